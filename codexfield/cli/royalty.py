"""`codexfield royalty ...`: payout breakdowns and settlement over the royalty graph.

The arithmetic is codexfield/royalty.py (`breakdown`, `plan`, `load_graph_from_chain`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

import click

from codexfield.cli.options import network_option
from codexfield.deployments import DEFAULT_NETWORK, connected, load_account
from codexfield.royalty import MAX_BATCH, breakdown, load_graph_from_chain, plan

NETWORK_OPTION = network_option(
    default=None, help=f"ape network choice [default: the connected one, else {DEFAULT_NETWORK}]"
)


TOKEN_OPTION = click.option("--token", default="USDC", show_default=True, help="token symbol from the address book")


def _to_units(amount: str, decimals: int) -> int:
    try:
        value = Decimal(amount) * (Decimal(10) ** decimals)
    except InvalidOperation:
        raise click.BadParameter(f"{amount!r} is not a number (e.g. 12.5)") from None
    if value != value.to_integral_value() or value < 0:
        raise click.BadParameter(f"{amount} has more than {decimals} decimals or is negative")
    return int(value)


def _fmt(units: int | Fraction, decimals: int) -> str:
    scale = Decimal(10) ** decimals
    if isinstance(units, Fraction):
        return f"{Decimal(units.numerator) / Decimal(units.denominator) / scale:.6f}"
    return f"{Decimal(units) / scale:f}"


@click.group(name="royalty")
def royalty_group() -> None:
    """Royalty graph: payout breakdowns and settlement (propagate_many)."""


@royalty_group.command(name="breakdown")
@click.argument("capsule", type=int)
@click.argument("amount")
@TOKEN_OPTION
@NETWORK_OPTION
@click.option("--paths/--no-paths", default=False, help="also list the exact share of every lineage path")
def breakdown_command(capsule: int, amount: str, token: str, network: str | None, paths: bool) -> None:
    """Who receives what if AMOUNT (in token units, e.g. 12.5) is paid to CAPSULE."""
    from rich.console import Console
    from rich.table import Table

    from codexfield.deployments import contract

    with connected(network) as book:
        decimals = int(book.token(token).get("decimals", 18))
        units = _to_units(amount, decimals)
        registry = contract("CapsuleRegistry", book)
        graph = load_graph_from_chain(registry, [capsule])
    result = breakdown(graph, capsule, units)
    console = Console()
    table = Table(title=f"{amount} {token} paid to capsule {capsule}")
    table.add_column("capsule", justify="right")
    table.add_column("owner")
    table.add_column(token, justify="right")
    for c, v in sorted(result.by_capsule.items(), key=lambda kv: -kv[1]):
        table.add_row(str(c), graph[c][0], _fmt(v, decimals))
    console.print(table)
    if paths:
        ptable = Table(title="per path (exact, before per-vault rounding)")
        ptable.add_column("path")
        ptable.add_column("share", justify="right")
        ptable.add_column(token, justify="right")
        for ps in result.paths:
            ptable.add_row(
                " -> ".join(map(str, ps.path)), f"{float(ps.fraction) * 100:.4f}%", _fmt(ps.amount, decimals)
            )
        console.print(ptable)


@royalty_group.command(name="settle")
@click.argument("capsules", type=int, nargs=-1, required=True)
@TOKEN_OPTION
@NETWORK_OPTION
@click.option("--account", required=True, help="ape account alias (or TEST::<n> on a local chain)")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, MAX_BATCH))
@click.option("--dry-run", is_flag=True, help="print the plan without sending transactions")
def settle_command(
    capsules: tuple[int, ...], token: str, network: str | None, account: str, batch_size: int, dry_run: bool
) -> None:
    """Propagate the vaults of CAPSULES and of every ancestor they pay, children first."""
    from codexfield.deployments import contract

    with connected(network) as book:
        token_address = book.token(token)["address"]
        registry = contract("CapsuleRegistry", book)
        router = contract("RoyaltyRouter", book)
        graph = load_graph_from_chain(registry, capsules)
        batches = plan(graph, capsules, batch_size)
        click.echo(f"{sum(map(len, batches))} capsules in {len(batches)} batch(es)")
        if dry_run:
            for b in batches:
                click.echo(" ".join(map(str, b)))
            return
        sender = load_account(account)
        for i, b in enumerate(batches, 1):
            tx = router.propagate_many(b, token_address, sender=sender)
            click.echo(f"batch {i}/{len(batches)}: {len(b)} capsules, gas {tx.gas_used}, tx {tx.txn_hash}")
