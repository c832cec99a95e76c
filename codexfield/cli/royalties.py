"""`codexfield royalties status|propagate|claim` (docs/cli.md); the planner commands
`breakdown` and `settle` live in codexfield/royalty.py (`codexfield royalty ...`).

    codexfield royalties status 3 --token USDC
    codexfield royalties propagate 5 3 --token USDC --account keeper
    codexfield royalties claim 3 --token USDC --account me
"""

from __future__ import annotations

import click

from codexfield.cli.capsule import _require_capsule
from codexfield.cli.errors import CliError
from codexfield.cli.options import Cx, chain_options

TOKEN = click.option(
    "--token", default="USDC", show_default=True, help="Token symbol from the address book, or address."
)


@click.group("royalties")
def royalties_group() -> None:
    """A capsule's royalties: what waits in its vault, moving it up the graph, claiming."""


def _status(cx: Cx, capsule_id: int, token: str) -> dict:
    r = cx.cf.royalties(capsule_id, token)
    symbol = cx.symbol(token)
    return {
        "capsule_id": capsule_id,
        "token": symbol,
        "vault": cx.fmt(r["vault"], token),
        "claimable": cx.fmt(r["claimable"], token),
        "vault_raw": str(r["vault"]),
        "claimable_raw": str(r["claimable"]),
    }


@royalties_group.command("status")
@click.argument("capsule_id", type=int)
@TOKEN
@chain_options(send=False)
def status_command(cx: Cx, capsule_id: int, token: str) -> None:
    """Show CAPSULE_ID's vault (not yet propagated) and claimable balance."""
    with cx.session():
        _require_capsule(cx, capsule_id)
        s = _status(cx, capsule_id, token)
        cx.out(s, f"capsule {capsule_id}: vault {s['vault']}, claimable {s['claimable']}")


@royalties_group.command("propagate")
@click.argument("capsule_ids", type=int, nargs=-1, required=True)
@TOKEN
@chain_options(send=True)
def propagate_command(cx: Cx, capsule_ids: tuple[int, ...], token: str) -> None:
    """Move one hop of royalties for each capsule (children first; 'royalty settle' plans a graph)."""
    if len(capsule_ids) > 128:
        raise CliError(f"{len(capsule_ids)} capsules: at most 128 per transaction (use 'codexfield royalty settle')")
    with cx.session():
        sender = cx.sender
        for c in capsule_ids:
            _require_capsule(cx, c)
        cx.confirm(f"propagate {len(capsule_ids)} capsule(s)")
        cx.cf.propagate(list(capsule_ids), token, sender=sender)
        rows = [_status(cx, c, token) for c in capsule_ids]
        cx.out(
            {"capsules": rows},
            [f"capsule {s['capsule_id']}: vault {s['vault']}, claimable {s['claimable']}" for s in rows],
        )


@royalties_group.command("claim")
@click.argument("capsule_id", type=int)
@TOKEN
@click.option("--to", "recipient", help="Pay to this address (default: the sender).")
@chain_options(send=True)
def claim_command(cx: Cx, capsule_id: int, token: str, recipient: str | None) -> None:
    """Claim CAPSULE_ID's royalties as its owner (propagates its vault first)."""
    with cx.session():
        sender = cx.sender
        _require_capsule(cx, capsule_id)
        owner = str(cx.cf.registry.ownerOf(capsule_id))
        if owner.lower() != sender.address.lower():
            raise CliError(f"capsule {capsule_id} belongs to {owner}, not {sender.address}; only its owner claims")
        s = _status(cx, capsule_id, token)
        if int(s["vault_raw"]) == 0 and int(s["claimable_raw"]) == 0:
            raise CliError(f"capsule {capsule_id} has nothing to claim in {s['token']}; nothing was sent")
        cx.confirm(f"claim capsule {capsule_id}'s {s['token']}")
        amount = cx.cf.claim(capsule_id, token, recipient, sender=sender)
        to = recipient or sender.address
        cx.out(
            {
                "capsule_id": capsule_id,
                "token": s["token"],
                "claimed": cx.fmt(amount, token),
                "claimed_raw": str(amount),
                "to": str(to),
            },
            f"claimed {cx.fmt(amount, token)} to {to}",
        )
