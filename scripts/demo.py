"""`ape run demo --network ethereum:local:foundry` (`make demo`): the whole grid end to end.

Thin: the flow is `codexfield.demo.run_flow`, the report `codexfield.demo.print_summary`.
"""

import click
from ape.cli import ConnectedProviderCommand


@click.command(cls=ConnectedProviderCommand)
@click.option("--calls", default=100, show_default=True, help="Invocations the consumer makes.")
@click.option("--workdir", default=".demo", show_default=True, help="Scratch directory (wiped first).")
def cli(calls, workdir):
    """Deploy, mint a dataset and a model trained on it, serve metered calls, settle, score."""
    from ape import accounts, networks
    from ape.logging import logger
    from rich.console import Console

    from codexfield.demo import Actors, print_summary, run_flow

    if networks.provider.network.name != "local":
        raise click.UsageError("the demo mints test tokens and travels in time: run it on a local network")
    logger.set_level("WARNING")  # ape's per-transaction INFO lines would drown the story
    actors = Actors.from_test_accounts(accounts.test_accounts)
    result = run_flow(actors, calls=calls, workdir=workdir, log=click.echo)
    print_summary(result, actors, Console(width=140))
