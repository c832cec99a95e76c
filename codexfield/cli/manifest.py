"""`codexfield pack` and `codexfield verify`: a capsule directory into its manifest, and back.

The hashing, the manifest and the comparison are codexfield/manifest.py (`pack`, `verify`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from codexfield.cli.options import network_option
from codexfield.manifest import (
    KIND_NAMES,
    MANIFEST_FILE,
    ManifestError,
    onchain_content_hash,
    pack,
    parse_hash,
    verify,
    write_manifest,
)


class CommandFailed(click.ClickException):
    """The command could not do its job (bad input, no address book, unreadable file): exit code 2,
    so that scripts can tell it from a verification mismatch (exit code 1)."""

    exit_code = 2


@click.command("pack")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", help="Capsule name (default: capsule.toml, else the directory name).")
@click.option(
    "--kind", type=click.Choice(KIND_NAMES, case_sensitive=False), help="Capsule kind (or kind = in capsule.toml)."
)
@click.option("--description", help="One-paragraph description.")
@click.option("--version", "version_", metavar="TEXT", help="Your version label, e.g. 1.2.0.")
@click.option("--creator", help="Creator DID, e.g. did:ethr:0x7a69:0xabc...")
@click.option("--parent", "parents", multiple=True, help="Parent capsule id or CAIP-19 id (repeatable).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Where to write the canonical manifest (default: DIR/{MANIFEST_FILE}).",
)
@click.option(
    "--car",
    "car",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the whole capsule (files, manifest, directory) as a CARv1 file for IPFS/Filecoin.",
)
@click.option("--store/--no-store", default=True, show_default=True, help="Also put the manifest in the store.")
@click.option(
    "--store-url",
    envvar="CODEXFIELD_STORE",
    metavar="URL",
    help="Store: a directory, file:///dir/, or kubo+http://127.0.0.1:5001 (default ~/.codexfield/store).",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pack_command(
    directory, name, kind, description, version_, creator, parents, out, car, store, store_url, progress, as_json
):
    """Hash every file of DIRECTORY into a capsule manifest; print its content hash and CID.

    Mint with the printed content hash; 'codexfield verify' checks a directory against it later.
    """
    from codexfield.store import StoreError, open_store

    extra: dict[str, Any] = {}
    if creator:
        extra["creator"] = creator
    if parents:
        extra["parents"] = [int(p) if p.isdigit() else p for p in parents]
    out = out or directory / MANIFEST_FILE
    try:
        result = pack(
            directory,
            name=name,
            kind=kind,
            description=description,
            version=version_,
            progress=progress,
            skip=[out],
            car=car,
            **extra,
        )
        write_manifest(result, out)
        stored_in = None
        if store:
            backend = open_store(store_url)
            backend.put(result.canonical)
            stored_in = repr(backend)
    except (ManifestError, StoreError) as exc:
        raise CommandFailed(str(exc)) from None
    except OSError as exc:
        raise CommandFailed(f"cannot write {out}: {exc.strerror}") from None
    summary = {
        "content_hash": result.content_hash_hex,
        "cid": result.cid,
        "kind": result.manifest["kind"],
        "kind_id": result.kind_id,
        "files": result.file_count,
        "bytes": result.total_bytes,
        "manifest": str(out),
        "store": stored_in,
        "root_cid": result.root_cid,
        "car": str(result.car) if result.car else None,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"content hash  {summary['content_hash']}")
    click.echo(f"cid           {summary['cid']}")
    click.echo(f"kind          {summary['kind']} ({summary['kind_id']})")
    click.echo(f"files         {summary['files']}")
    click.echo(f"bytes         {summary['bytes']}")
    click.echo(f"manifest      {out}")
    click.echo(f"ipfs root     {result.root_cid}")
    if result.car:
        click.echo(f"car           {result.car}")
    if stored_in:
        click.echo(f"stored in     {stored_in}")


@click.command("verify")
@click.argument("directory", metavar="DIR_OR_CAR", type=click.Path(exists=True, path_type=Path))
@click.argument("capsule_arg", metavar="[CAPSULE_ID]", required=False, type=int)
@click.option("--capsule", "capsule_id", type=int, help="Capsule id whose on-chain content hash to check against.")
@click.option(
    "--hash", "expected", metavar="HASH", help="Check against this content hash (0x...) or CID instead of the chain."
)
@network_option(help="ape network choice of the registry.")
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=f"The capsule's manifest (default: DIR/{MANIFEST_FILE}, then the store).",
)
@click.option("--store-url", envvar="CODEXFIELD_STORE", metavar="URL", help="Store to fetch the manifest from.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_command(directory, capsule_arg, capsule_id, expected, network, manifest_path, store_url, progress, as_json):
    """Re-hash DIR_OR_CAR (a capsule directory or its CAR) and compare it with a capsule's on-chain content hash.

    Exit code 0 when everything matches, 1 on a mismatch (each differing file is listed),
    2 when the check could not be made (no address book, unknown capsule, bad input).
    """
    from codexfield.store import StoreError, open_store

    if capsule_arg is not None and capsule_id is not None and capsule_arg != capsule_id:
        raise click.UsageError("give the capsule id once (CAPSULE_ID or --capsule)")
    capsule_id = capsule_id if capsule_id is not None else capsule_arg
    if (capsule_id is None) == (expected is None):
        raise click.UsageError("say what to verify against: --capsule ID (reads the chain) or --hash 0x...")
    try:
        if expected is not None:
            digest = parse_hash(expected)
        else:
            digest = _read_chain(capsule_id, network)
        result = verify(
            directory,
            digest,
            manifest=manifest_path.read_bytes() if manifest_path else None,
            store=open_store(store_url),
            progress=progress,
        )
    except (ManifestError, StoreError) as exc:
        raise CommandFailed(str(exc)) from None
    if as_json:
        payload = result.to_json()
        if capsule_id is not None:
            payload["capsule_id"] = capsule_id
        click.echo(json.dumps(payload, indent=2))
    else:
        if capsule_id is not None:
            click.echo(f"capsule {capsule_id} on {network}")
        click.echo(result.describe())
    sys.exit(0 if result.ok else 1)


def _read_chain(capsule_id: int, network: str) -> bytes:
    from codexfield.deployments import AddressBookError, connected, contract

    try:
        with connected(network) as book:
            return onchain_content_hash(contract("CapsuleRegistry", book), capsule_id)
    except AddressBookError as exc:
        raise CommandFailed(str(exc)) from None
    except ManifestError:
        raise
    except Exception as exc:  # network parsing / provider errors from ape
        if exc.__class__.__module__.startswith("ape"):
            raise CommandFailed(
                f"cannot read capsule {capsule_id} on {network}: {exc} "
                "(is the network running, and is its address book current? re-deploy if the chain was reset)"
            ) from None
        raise
