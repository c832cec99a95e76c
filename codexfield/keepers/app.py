"""Building keepers from an address book, and the `codexfield keeper ...` commands.

    codexfield keeper settler   --network ethereum:sepolia:node --account keeper [--once]
    codexfield keeper prober    --network ethereum:sepolia:node --account reporter1
    codexfield keeper finalizer --network ethereum:sepolia:node --account keeper

Each runs its package function (`run_once`) in a loop with a durable state file (default
`~/.codexfield/keepers/<keeper>-<chain id>-<account>.sqlite`). The same keepers run as
silverback bots: `silverback run codexfield.keepers.bots.settler --network ... --account ...`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click

from codexfield.keepers.base import KeeperState, log_event, run_loop, setup_logging

from codexfield.deployments import load_account

DEFAULT_NETWORK = "ethereum:local:foundry"


def default_state(keeper: str, chain_id: int, account: str) -> Path:
    base = Path(os.environ.get("CODEXFIELD_HOME", Path.home() / ".codexfield")) / "keepers"
    return base / f"{keeper}-{chain_id}-{account.lower()[:10]}.sqlite"


def build(keeper: str, book: Any, account: Any, state: KeeperState, **opts: Any) -> Any:
    """A Settler, Prober or Finalizer on the contracts of `book`."""
    from codexfield.deployments import contract

    if keeper == "settler":
        from codexfield.keepers.settler import Settler

        return Settler(contract("RoyaltyRouter", book), contract("CapsuleRegistry", book), account, state,
                       start_block=book.block, **opts)
    if keeper == "prober":
        from codexfield.keepers.prober import Prober

        return Prober(contract("AccessStaking", book), account, state, **opts)
    if keeper == "finalizer":
        from codexfield.keepers.finalizer import Finalizer

        return Finalizer(contract("AccessStaking", book), contract("UsageMeter", book), account, state, **opts)
    raise ValueError(f"unknown keeper {keeper!r}: settler, prober or finalizer")


@contextmanager
def _session(network: str) -> Iterator[Any]:
    from codexfield.deployments import connected

    with connected(network) as book:
        yield book


def _run(keeper: str, network: str, account_alias: str, state_path: str | None, interval: float, once: bool,
         **opts: Any) -> None:
    setup_logging()
    with _session(network) as book:
        account = load_account(account_alias)
        path = Path(state_path) if state_path else default_state(keeper, book.chain_id, account.address)
        k = build(keeper, book, account, KeeperState(path), **opts)
        log_event(keeper, "started", network=network, account=account.address, state=str(path))
        run_loop(k.run_once, interval=interval, who=keeper, max_iterations=1 if once else None)


_common = [
    click.option("--network", default=DEFAULT_NETWORK, show_default=True, help="ape network choice."),
    click.option("--account", "account_alias", required=True, help="ape account alias, or TEST::<n> locally."),
    click.option("--state", "state_path", default=None, help="State file (default under ~/.codexfield/keepers)."),
    click.option("--interval", default=15.0, show_default=True, help="Seconds between rounds."),
    click.option("--once", is_flag=True, help="Run one round and exit."),
]


def common(f):
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.group("keeper")
def keeper_group() -> None:
    """Keeper bots: settle royalties, probe and report nodes, finalize epochs."""


@keeper_group.command("settler")
@common
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 128))
@click.option("--confirmations", default=0, show_default=True, type=int, help="Blocks to wait before reading logs.")
def settler_command(network, account_alias, state_path, interval, once, batch_size, confirmations):
    """Propagate credited royalty vaults leaf-to-root (RoyaltyRouter.propagate_many)."""
    _run("settler", network, account_alias, state_path, interval, once, batch_size=batch_size,
         confirmations=confirmations)


@keeper_group.command("prober")
@common
@click.option("--probes", default=3, show_default=True, help="GET /health requests per node and round.")
@click.option("--concurrency", default=16, show_default=True, help="Requests in flight at once.")
@click.option("--timeout", default=2.0, show_default=True, help="Seconds per probe.")
def prober_command(network, account_alias, state_path, interval, once, probes, concurrency, timeout):
    """Probe registered nodes and submit epoch reports (needs the REPORTER role)."""
    _run("prober", network, account_alias, state_path, interval, once, probes=probes, concurrency=concurrency,
         timeout=timeout)


@keeper_group.command("finalizer")
@common
@click.option("--page", default=64, show_default=True, type=click.IntRange(1, 256), help="Nodes per finalize call.")
@click.option("--no-sweep", is_flag=True, help="Do not sweep protocol fees into the reward pool.")
def finalizer_command(network, account_alias, state_path, interval, once, page, no_sweep):
    """Sweep protocol fees into the PoA pool and finalize ended epochs page by page."""
    _run("finalizer", network, account_alias, state_path, interval, once, page=page, sweep=not no_sweep)
