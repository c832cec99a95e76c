"""Building keepers from an address book and running them (CLI: codexfield/cli/keeper.py).

    codexfield keeper settler   --network ethereum:sepolia:node --account keeper [--once]
    codexfield keeper prober    --network ethereum:sepolia:node --account reporter1
    codexfield keeper finalizer --network ethereum:sepolia:node --account keeper

Each runs its package function (`run_once`) in a loop with a durable state file (default
`~/.codexfield/keepers/<keeper>-<chain id>-<account>.sqlite`). The same keepers run as
silverback bots: `silverback run codexfield.keepers.bots.settler --network ... --account ...`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codexfield.deployments import load_account
from codexfield.keepers.base import KeeperState, log_event, run_loop, setup_logging


def default_state(keeper: str, chain_id: int, account: str) -> Path:
    base = Path(os.environ.get("CODEXFIELD_HOME", Path.home() / ".codexfield")) / "keepers"
    return base / f"{keeper}-{chain_id}-{account.lower()[:10]}.sqlite"


def build(keeper: str, book: Any, account: Any, state: KeeperState, **opts: Any) -> Any:
    """A Settler, Prober or Finalizer on the contracts of `book`."""
    from codexfield.deployments import contract

    if keeper == "settler":
        from codexfield.keepers.settler import Settler

        return Settler(
            contract("RoyaltyRouter", book),
            contract("CapsuleRegistry", book),
            account,
            state,
            start_block=book.block,
            **opts,
        )
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


def run(
    keeper: str, network: str, account_alias: str, state_path: str | None, interval: float, once: bool, **opts: Any
) -> None:
    """Connect to `network`, build `keeper` for `account_alias` and run its rounds every `interval`
    seconds (one round with `once`), its progress kept in `state_path` (default: `default_state`)."""
    setup_logging()
    with _session(network) as book:
        account = load_account(account_alias)
        path = Path(state_path) if state_path else default_state(keeper, book.chain_id, account.address)
        k = build(keeper, book, account, KeeperState(path), **opts)
        log_event(keeper, "started", network=network, account=account.address, state=str(path))
        run_loop(k.run_once, interval=interval, who=keeper, max_iterations=1 if once else None)
