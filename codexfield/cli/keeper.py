"""`codexfield keeper ...`: run the settler, prober and finalizer keepers from a shell.

    codexfield keeper settler   --network ethereum:sepolia:node --account keeper [--once]
    codexfield keeper prober    --network ethereum:sepolia:node --account reporter1
    codexfield keeper finalizer --network ethereum:sepolia:node --account keeper

Each runs its package function (`run_once`) in a loop with a durable state file (default
`~/.codexfield/keepers/<keeper>-<chain id>-<account>.sqlite`): codexfield/keepers/app.py `run`.
The same keepers run as silverback bots: `silverback run codexfield.keepers.bots.settler ...`.
"""

from __future__ import annotations

import click

from codexfield.cli.options import network_option
from codexfield.keepers.app import run

_common = [
    network_option(),
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
    run(
        "settler",
        network,
        account_alias,
        state_path,
        interval,
        once,
        batch_size=batch_size,
        confirmations=confirmations,
    )


@keeper_group.command("prober")
@common
@click.option("--probes", default=3, show_default=True, help="GET /health requests per node and round.")
@click.option("--concurrency", default=16, show_default=True, help="Requests in flight at once.")
@click.option("--timeout", default=2.0, show_default=True, help="Seconds per probe.")
def prober_command(network, account_alias, state_path, interval, once, probes, concurrency, timeout):
    """Probe registered nodes and submit epoch reports (needs the REPORTER role)."""
    run(
        "prober",
        network,
        account_alias,
        state_path,
        interval,
        once,
        probes=probes,
        concurrency=concurrency,
        timeout=timeout,
    )


@keeper_group.command("finalizer")
@common
@click.option("--page", default=64, show_default=True, type=click.IntRange(1, 256), help="Nodes per finalize call.")
@click.option("--no-sweep", is_flag=True, help="Do not sweep protocol fees into the reward pool.")
def finalizer_command(network, account_alias, state_path, interval, once, page, no_sweep):
    """Sweep protocol fees into the PoA pool and finalize ended epochs page by page."""
    run("finalizer", network, account_alias, state_path, interval, once, page=page, sweep=not no_sweep)
