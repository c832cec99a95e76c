"""`codexfield rate` (a credential holder rates a capsule) and `codexfield attest` (an auditor
attests it), docs/cli.md.

    codexfield rate 3 5 --credential 7 --review review.md --account me
    codexfield attest 3 ISO-42001 --passed --report audit.pdf --valid-days 365 --account auditor
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import click

from codexfield.cli.capsule import _require_capsule
from codexfield.cli.errors import CliError
from codexfield.cli.options import Cx, chain_options


def _file_hash(path: Path | None) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest() if path else b"\0" * 32


@click.command("rate")
@click.argument("capsule_id", type=int)
@click.argument("stars", type=click.IntRange(1, 5))
@click.option("--credential", "credential_id", type=int, required=True, help="Your credential on the capsule.")
@click.option(
    "--review",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A review file; its SHA-256 goes on chain.",
)
@chain_options(send=True)
def rate_command(cx: Cx, capsule_id: int, stars: int, credential_id: int, review: Path | None) -> None:
    """Rate CAPSULE_ID with STARS (1-5) as the holder of a credential that was used."""
    with cx.session():
        sender = cx.sender
        _require_capsule(cx, capsule_id)
        c = cx.cf.credential(credential_id)
        if c["terms_id"] == 0:
            raise CliError(f"no credential {credential_id} on {cx.network}")
        if int(c["capsule_id"]) != capsule_id:
            raise CliError(f"credential {credential_id} is for capsule {c['capsule_id']}, not {capsule_id}")
        if str(c["holder"]).lower() != sender.address.lower():
            raise CliError(f"credential {credential_id} is held by {c['holder']}, not {sender.address}")
        cx.confirm(f"rate capsule {capsule_id} {stars} stars")
        rep = cx.cf.contract("Reputation")
        rep.rate(capsule_id, credential_id, stars, _file_hash(review), sender=sender)
        total, count = (int(x) for x in rep.rating(capsule_id))
        mean = total / count if count else 0
        cx.out(
            {
                "capsule_id": capsule_id,
                "credential_id": credential_id,
                "stars": stars,
                "ratings": count,
                "mean_stars": round(mean, 3),
            },
            f"rated capsule {capsule_id} {stars}/5 ({count} ratings, mean {mean:.2f})",
        )


@click.command("attest")
@click.argument("capsule_id", type=int)
@click.argument("standard")
@click.option("--passed/--failed", required=True, help="The audit's outcome.")
@click.option(
    "--report",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The audit report; its SHA-256 goes on chain.",
)
@click.option("--valid-days", type=click.FloatRange(min=0, min_open=True), help="Expiry (default: none).")
@chain_options(send=True)
def attest_command(
    cx: Cx, capsule_id: int, standard: str, passed: bool, report: Path, valid_days: float | None
) -> None:
    """Attest that CAPSULE_ID passed (or failed) an audit against STANDARD (e.g. ISO-42001)."""
    from eth_utils import keccak

    with cx.session():
        sender = cx.sender
        _require_capsule(cx, capsule_id)
        from ape import chain

        valid_until = int(chain.pending_timestamp + valid_days * 86400) if valid_days else 0
        rep = cx.cf.contract("Reputation")
        if not rep.hasRole(rep.AUDITOR_ROLE(), sender):
            raise CliError(f"{sender.address} is not an auditor; the Reputation admin grants it AUDITOR_ROLE first")
        cx.confirm(f"attest capsule {capsule_id} against {standard}")
        receipt = rep.attest(capsule_id, keccak(text=standard), passed, _file_hash(report), valid_until, sender=sender)
        aid = int(receipt.return_value)
        cx.out(
            {
                "attestation_id": aid,
                "capsule_id": capsule_id,
                "standard": standard,
                "passed": passed,
                "valid_until": valid_until,
                "auditor": sender.address,
            },
            f"attestation {aid}: capsule {capsule_id} {'passed' if passed else 'failed'} {standard}"
            + (f", valid until {time.strftime('%Y-%m-%d', time.gmtime(valid_until))}" if valid_until else ""),
        )
