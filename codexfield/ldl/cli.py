"""`codexfield license ...`: compile licence texts offline, publish them, read them back.

    codexfield license compile terms.ldl [--chain 31337] [--capsule 42] [--json | --abi]
    codexfield license publish terms.ldl --capsule 42 --network ethereum:local:foundry --account TEST:1
    codexfield license show 1 --network ethereum:local:foundry

A licence error prints `FILE:LINE:COL: message`, the line and a caret, and exits with 2.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click

from .compiler import CompiledLicense, compile_ldl
from .errors import LDLError

DEFAULT_NETWORK = "ethereum:local:foundry"


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


def _load_account(alias: str):
    """`codexfield.deployments.load_account`, with a bad alias as a clean CLI error."""
    from codexfield.deployments import load_account

    try:
        return load_account(alias)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--account") from None


@contextmanager
def _connected(network: str) -> Iterator[Any]:
    """`codexfield.deployments.connected` (which reuses a live session), with a missing address
    book as a clean CLI error."""
    from codexfield.deployments import AddressBookError, connected

    try:
        with connected(network) as book:
            yield book
    except AddressBookError as exc:
        raise click.ClickException(str(exc)) from None


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
@click.option("--network", default=DEFAULT_NETWORK, show_default=True, help="ape network choice.")
@click.option("--meter", "meter_name", help="The meter's name, if it is not one of the known meters.")
def show_command(terms_id: int, network: str, meter_name: str | None) -> None:
    """Read LicenseManager.terms(TERMS_ID) and print it as LDL text."""
    from codexfield.deployments import AddressBookError, contract

    from .chain import TermsNotFound, read_terms, token_list_for
    from .decompiler import decompile

    with _connected(network) as book:
        try:
            terms = read_terms(contract("LicenseManager", book), terms_id)
        except (TermsNotFound, AddressBookError) as exc:
            raise click.ClickException(str(exc)) from None
        try:
            text = decompile(terms, chain_id=book.chain_id, meter_name=meter_name, token_list=token_list_for(book))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--meter") from None
    click.echo(f"# terms {terms_id} on {network}")
    click.echo(text, nl=False)


@license_group.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--capsule", "capsule_id", type=click.IntRange(min=1), help="Capsule id; overrides the 'for capsule' clause."
)
@click.option("--network", default=DEFAULT_NETWORK, show_default=True, help="ape network choice.")
@click.option("--account", "account_alias", required=True, help="ape account alias, or TEST:<n> for a test account.")
def publish_command(file: str, capsule_id: int | None, network: str, account_alias: str) -> None:
    """Compile FILE for the connected chain and call LicenseManager.create_terms; prints the terms id."""
    from ape.exceptions import ContractLogicError

    from codexfield.deployments import AddressBookError, contract

    from .chain import publish_terms, token_list_for

    text, base, shown = _read_source(file)
    with _connected(network) as book:
        compiled = _compile_or_exit(
            text, shown, chain_id=book.chain_id, token_list=token_list_for(book), base_dir=base, capsule_id=capsule_id
        )
        try:
            manager = contract("LicenseManager", book)
        except AddressBookError as exc:
            raise click.ClickException(str(exc)) from None
        sender = _load_account(account_alias)
        try:
            terms_id = publish_terms(manager, compiled.terms, sender)
        except ContractLogicError as exc:
            raise click.ClickException(f"create_terms reverted: {exc.message or exc}") from None
    click.echo(terms_id)
