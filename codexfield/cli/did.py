"""`codexfield did ...`: resolve a did:ethr on the IdentityRegistry, print the DID of an address.

The resolver is codexfield/did.py (`resolve`, `did_for`).
"""

from __future__ import annotations

import json

import click

from codexfield.cli.options import network_option
from codexfield.did import did_for, resolve


@click.group(name="did")
def did_command() -> None:
    """did:ethr identities on the CodexField IdentityRegistry (ERC-1056)."""


@did_command.command("resolve")
@click.argument("did")
@network_option(help="ape network choice")
@click.option("--document-only", "document_only", is_flag=True, help="print only the DID document, no metadata")
@click.option(
    "--chain-time",
    is_flag=True,
    help="judge validity by the latest block's time instead of the wall clock (the spec's 'now')",
)
def resolve_command(did: str, network: str, document_only: bool, chain_time: bool) -> None:
    """Resolve DID (did:ethr:<chainId hex>:<address>; without a network it means mainnet) and print JSON."""
    from ape.exceptions import ContractNotFoundError

    from codexfield import deployments

    try:
        with deployments.connected(network) as book:
            from ape import networks

            contract = deployments.contract("IdentityRegistry", book)
            now = None
            if chain_time:
                from ape import chain

                now = int(chain.blocks.head.timestamp)
            result = resolve(did, contract, int(networks.provider.chain_id), now=now)
    except deployments.AddressBookError as exc:
        raise click.ClickException(str(exc)) from None
    except ContractNotFoundError:
        raise click.ClickException(
            f"no IdentityRegistry code at the address in the {network} address book; "
            "the book is stale or the node was restarted: redeploy with 'ape run deploy --network ...'"
        ) from None
    error = result["didResolutionMetadata"].get("error")
    if error:
        click.echo(json.dumps(result, indent=2), err=True)
        raise click.ClickException(f"{error}: {result['didResolutionMetadata']['message']}")
    click.echo(json.dumps(result["didDocument"] if document_only else result, indent=2))


@did_command.command("id")
@click.argument("address")
@click.option("--chain-id", type=int, default=31337, show_default=True)
def id_command(address: str, chain_id: int) -> None:
    """Print the did:ethr DID of ADDRESS on --chain-id."""
    click.echo(did_for(address, chain_id))
