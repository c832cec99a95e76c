"""`codexfield license ...`: compile licence texts offline, publish them, read them back.

    codexfield license compile terms.ldl [--chain 31337] [--capsule 42] [--json | --abi]
    codexfield license publish terms.ldl --capsule 42 --network ethereum:local:foundry --account TEST:1
    codexfield license show 1 --network ethereum:local:foundry
    codexfield license purchase 1 --account me [--max-upfront "1 USDC"]
    codexfield license credential 7 --json
    codexfield license revoke 7 --reason "dispute 12" --account licensor

A licence error prints `FILE:LINE:COL: message`, the line and a caret, and exits with 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from codexfield.cli.errors import CliError
from codexfield.cli.options import Cx, chain_options
from codexfield.ldl.compiler import CompiledLicense, compile_ldl
from codexfield.ldl.errors import LDLError


def _read_source(file: str) -> tuple[str, Path, str]:
    """(text, base_dir, display name) of FILE or '-' (stdin)."""
    if file == "-":
        data, base, shown = sys.stdin.buffer.read(), Path.cwd(), "<stdin>"
    else:
        path = Path(file)
        data, base, shown = path.read_bytes(), path.resolve().parent, file
    try:
        return data.decode("utf-8-sig"), base, shown
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{shown} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _compile_or_exit(text: str, shown: str, **kwargs) -> CompiledLicense:
    try:
        return compile_ldl(text, **kwargs)
    except LDLError as err:
        click.echo(err.render(shown), err=True)
        sys.exit(2)


@click.group(name="license")
def license_group() -> None:
    """Licence terms in the License Description Language (docs/ldl.md)."""


@license_group.command("compile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--chain",
    "chain_id",
    type=int,
    default=31337,
    show_default=True,
    help="Chain id whose token list names the tokens.",
)
@click.option(
    "--capsule", "capsule_id", type=click.IntRange(min=0), help="Capsule id; overrides the 'for capsule' clause."
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON document.")
@click.option("--abi", "as_abi", is_flag=True, help="Print only the ABI tuple of create_terms (cast syntax).")
def compile_command(file: str, chain_id: int, capsule_id: int | None, as_json: bool, as_abi: bool) -> None:
    """Compile FILE ('-' for stdin) to Terms, offline: prints the Terms as JSON and the ABI tuple."""
    if as_json and as_abi:
        raise click.UsageError("--json and --abi are exclusive")
    text, base, shown = _read_source(file)
    compiled = _compile_or_exit(text, shown, chain_id=chain_id, base_dir=base, capsule_id=capsule_id)
    if as_abi:
        click.echo(compiled.terms.abi_text())
        return
    click.echo(json.dumps(compiled.to_json(), indent=2))
    if not as_json:
        click.echo(f"abi {compiled.terms.abi_text()}", err=False)


@license_group.command("show")
@click.argument("terms_id", type=click.IntRange(min=0))
@click.option("--meter", "meter_name", help="The meter's name, if it is not one of the known meters.")
@chain_options(send=False)
def show_command(cx: Cx, terms_id: int, meter_name: str | None) -> None:
    """Read LicenseManager.terms(TERMS_ID) and print it as LDL text (prices in token units)."""
    from codexfield.ldl.chain import TermsNotFound, read_terms, token_list_for
    from codexfield.ldl.decompiler import decompile

    with cx.session():
        try:
            terms = read_terms(cx.cf.licenses, terms_id)
        except TermsNotFound as exc:
            raise CliError(f"{exc} on {cx.network}") from None
        try:
            text = decompile(
                terms, chain_id=cx.book.chain_id, meter_name=meter_name, token_list=token_list_for(cx.book)
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--meter") from None
        token = str(terms.payment_token)
        data = {
            "terms_id": terms_id,
            "capsule_id": terms.capsule_id,
            "ldl": text,
            "active": bool(cx.cf.licenses.terms_active(terms_id)),
            "price_per_mu": cx.fmt(terms.price_per_mu, token),
            "upfront": cx.fmt(terms.upfront_fee, token),
            "credentials_issued": int(cx.cf.licenses.credentials_issued(terms_id)),
        }
    if cx.as_json:
        cx.out(data, "")
    else:
        click.echo(f"# terms {terms_id} on {cx.network}")
        click.echo(text, nl=False)


@license_group.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--capsule", "capsule_id", type=click.IntRange(min=1), help="Capsule id; overrides the 'for capsule' clause."
)
@chain_options(send=True)
def publish_command(cx: Cx, file: str, capsule_id: int | None) -> None:
    """Compile FILE for the connected chain and call LicenseManager.create_terms; prints the terms id."""
    from codexfield.ldl.chain import publish_terms, token_list_for

    text, base, shown = _read_source(file)
    with cx.session():
        compiled = _compile_or_exit(
            text,
            shown,
            chain_id=cx.book.chain_id,
            token_list=token_list_for(cx.book),
            base_dir=base,
            capsule_id=capsule_id,
        )
        manager = cx.cf.licenses
        sender = cx.sender
        existing = int(manager.terms_id_of(compiled.terms.as_tuple()))
        if existing:
            raise CliError(
                f"these terms already exist as terms {existing}; buy them with "
                f"'codexfield license purchase {existing}' or change the text"
            )
        registry = cx.cf.registry
        capsule = compiled.terms.capsule_id
        if not registry.exists(capsule):
            raise CliError(f"no capsule {capsule} on {cx.network}; mint it first ('codexfield capsule mint DIR')")
        owner = str(registry.ownerOf(capsule))
        if owner.lower() != sender.address.lower():
            raise CliError(f"capsule {capsule} belongs to {owner}, not {sender.address}; its owner publishes terms")
        cx.confirm(f"publish terms for capsule {capsule}")
        terms_id = publish_terms(manager, compiled.terms, sender)
    cx.out({"terms_id": terms_id, "capsule_id": capsule}, str(terms_id))


def _terms_or_fail(cx: Cx, terms_id: int):
    from codexfield.ldl.chain import TermsNotFound, read_terms

    try:
        return read_terms(cx.cf.licenses, terms_id)
    except TermsNotFound:
        raise CliError(
            f"no licence terms with id {terms_id} on {cx.network}; 'codexfield license show ID' reads existing ones"
        ) from None


def credential_json(cx: Cx, credential_id: int) -> dict[str, Any]:
    from ape import chain
    from ape.exceptions import ContractLogicError

    try:
        c = cx.cf.credential(credential_id)
    except ContractLogicError:
        c = {"terms_id": 0}
    if int(c["terms_id"]) == 0:
        raise CliError(f"no credential {credential_id} on {cx.network}")
    now = int(chain.pending_timestamp)
    expires, revoked = int(c["expires_at"]), int(c["revoked_at"])
    status = "revoked" if revoked and revoked <= now else "expired" if expires and expires <= now else "valid"
    return {
        "credential_id": credential_id,
        "terms_id": int(c["terms_id"]),
        "capsule_id": int(c["capsule_id"]),
        "holder": str(c["holder"]),
        "issued_at": int(c["issued_at"]),
        "expires_at": expires,
        "revoked_at": revoked,
        "mu_used": str(int(c["mu_used"])),
        "status": status,
    }


@license_group.command("purchase")
@click.argument("terms_id", type=click.IntRange(min=1))
@click.option("--holder", help="Who receives the credential (default: the sender).")
@click.option("--max-upfront", help="Most you pay upfront, e.g. '1 USDC' (default: the fee read now).")
@chain_options(send=True)
def purchase_command(cx: Cx, terms_id: int, holder: str | None, max_upfront: str | None) -> None:
    """Buy a credential on TERMS_ID (approves the upfront fee first); prints the credential id."""
    with cx.session():
        terms = _terms_or_fail(cx, terms_id)
        sender = cx.sender
        token = str(terms.payment_token)
        if not cx.cf.licenses.terms_active(terms_id):
            raise CliError(f"terms {terms_id} are inactive (the licensor stopped selling them)")
        fee = int(terms.upfront_fee)
        cap = fee if max_upfront is None else cx.amount(max_upfront, token)[0]
        if fee > cap:
            raise CliError(f"the upfront fee is {cx.fmt(fee, token)}, above --max-upfront {cx.fmt(cap, token)}")
        cx.require_balance(token, fee)
        cx.confirm(f"buy terms {terms_id} for {cx.fmt(fee, token)} upfront")
        credential_id = cx.cf.purchase(terms_id, holder, max_upfront=cap, sender=sender)
        data = credential_json(cx, credential_id)
        data["paid"] = cx.fmt(fee, token)
    cx.out(data, f"credential {credential_id} on terms {terms_id} for {data['holder']}, paid {data['paid']}")


@license_group.command("credential")
@click.argument("credential_id", type=click.IntRange(min=1))
@chain_options(send=False)
def credential_command(cx: Cx, credential_id: int) -> None:
    """Show a credential: holder, terms, validity, usage."""
    with cx.session():
        d = credential_json(cx, credential_id)
    cx.out(
        d,
        [
            f"credential {credential_id} ({d['status']}) on terms {d['terms_id']} / capsule {d['capsule_id']}",
            f"  holder   {d['holder']}",
            f"  expires  {d['expires_at'] or 'never'}",
            f"  MU used  {d['mu_used']}",
        ],
    )


@license_group.command("revoke")
@click.argument("credential_id", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Short reason (a dispute id, a notice); hashed on chain.")
@chain_options(send=True)
def revoke_command(cx: Cx, credential_id: int, reason: str) -> None:
    """Revoke a credential as its licensor (with the terms' notice) or as an arbiter."""
    from eth_utils import keccak

    with cx.session():
        d = credential_json(cx, credential_id)
        if d["status"] == "revoked" or d["revoked_at"]:
            raise CliError(f"credential {credential_id} is already revoked (effective {d['revoked_at']})")
        sender = cx.sender
        cx.confirm(f"revoke credential {credential_id}")
        cx.cf.licenses.revoke(credential_id, keccak(text=reason), sender=sender)
        d = credential_json(cx, credential_id)
    cx.out(d, f"credential {credential_id} revoked, effective {d['revoked_at']}")
