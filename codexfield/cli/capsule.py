"""`codexfield capsule mint|version|state|show` (docs/cli.md).

codexfield capsule mint ./my-dataset --kind dataset --account me
codexfield capsule version 3 ./my-dataset-v2 --account me
codexfield capsule state 3 deprecated --account me
codexfield capsule show 3 --json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from codexfield.cli.errors import CliError
from codexfield.cli.options import Cx, chain_options

STATES = {"active": 1, "deprecated": 2, "flagged": 4}
STATE_NAMES = {1: "active", 2: "deprecated", 3: "disputed", 4: "flagged"}


@click.group("capsule")
def capsule_group() -> None:
    """Content capsules: mint a packed directory, publish versions, set state, show."""


def _pack_and_store(directory: Path, kind: str | None, store_url: str | None, progress: bool | None):
    """Pack DIRECTORY (writing its manifest), put the manifest in the store; the PackResult."""
    from codexfield import manifest
    from codexfield.store import open_store

    out = directory / manifest.MANIFEST_FILE
    result = manifest.pack(directory, kind=kind, progress=progress, skip=[out])
    manifest.write_manifest(result, out)
    open_store(store_url).put(result.canonical)  # the indexer fetches it by CID: name and card in the catalog
    return result


def _parents(specs: tuple[str, ...]) -> list[tuple[int, int]]:
    out = []
    for spec in specs:
        try:
            cid, _, share = spec.partition(":")
            share_bps = round(float(share.rstrip("%")) * 100) if share.endswith("%") else int(share)
            out.append((int(cid), share_bps))
        except ValueError:
            raise CliError(f"--parent {spec!r}: write CAPSULE:SHARE, e.g. 3:10% or 3:1000 (basis points)") from None
    return out


def _require_capsule(cx: Cx, capsule_id: int) -> None:
    if capsule_id <= 0 or not cx.cf.registry.exists(capsule_id):
        raise CliError(f"no capsule {capsule_id} on {cx.network}; list capsules with 'codexfield index' or the catalog")


def capsule_json(cx: Cx, capsule_id: int) -> dict[str, Any]:
    c = cx.cf.capsule(capsule_id)
    from codexfield import manifest

    return {
        "capsule_id": capsule_id,
        "kind": manifest.kind_name(int(c["kind"])),
        "content_hash": "0x" + c["content_hash"].hex(),
        "cid": str(cx.cf.registry.cid(c["content_hash"])),
        "creator": str(c["creator"]),
        "owner": str(c["owner"]),
        "created_at": int(c["created_at"]),
        "version": int(c["version"]),
        "previous_id": int(c["previous_id"]),
        "latest_version": int(cx.cf.registry.latest_version(capsule_id)),
        "parents": [{"capsule_id": int(p), "share_bps": int(s)} for p, s in c["parents"]],
        "state": STATE_NAMES.get(int(c["state"]), str(int(c["state"]))),
        "uri": str(c["uri"]),
    }


def _print_capsule(cx: Cx, data: dict[str, Any]) -> None:
    lines = [
        f"capsule {data['capsule_id']} ({data['kind']}, {data['state']}) v{data['version']}",
        f"  owner     {data['owner']}",
        f"  creator   {data['creator']}",
        f"  hash      {data['content_hash']}",
        f"  cid       {data['cid']}",
    ]
    if data["previous_id"]:
        lines.append(f"  previous  {data['previous_id']}")
    if data["latest_version"] != data["capsule_id"]:
        lines.append(f"  latest    {data['latest_version']}")
    for p in data["parents"]:
        lines.append(f"  parent    {p['capsule_id']} ({p['share_bps'] / 100:g}%)")
    cx.out(data, lines)


@capsule_group.command("mint")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--kind", help="Capsule kind (default: capsule.toml's).")
@click.option("--parent", "parents", multiple=True, metavar="ID:SHARE", help="Parent capsule and share (3:10%).")
@click.option(
    "--parent-credential",
    "parent_credentials",
    multiple=True,
    type=int,
    help="Your credential on each parent, in --parent order (when the parent's terms require one).",
)
@click.option("--uri", default="", help="tokenURI override (default: ipfs://<manifest CID>).")
@click.option("--store-url", envvar="CODEXFIELD_STORE", help="Where the manifest goes (default ~/.codexfield/store).")
@click.option("--progress/--no-progress", default=None, help="Hashing progress bar (default: on a terminal).")
@chain_options(send=True)
def mint_command(
    cx: Cx,
    directory: Path,
    kind: str | None,
    parents: tuple[str, ...],
    parent_credentials: tuple[int, ...],
    uri: str,
    store_url: str | None,
    progress: bool | None,
) -> None:
    """Pack DIRECTORY, store its manifest and mint it as a capsule; prints the capsule id."""
    edges = _parents(parents)
    if parent_credentials and len(parent_credentials) != len(edges):
        raise CliError("give one --parent-credential per --parent (or none)")
    with cx.session():
        sender = cx.sender
        for p, _ in edges:
            _require_capsule(cx, p)
        result = _pack_and_store(directory, kind, store_url, progress)
        existing = int(cx.cf.registry.capsule_by_hash(result.content_hash))
        if existing:
            raise CliError(
                f"this content is already capsule {existing}; publish a new version with "
                f"'codexfield capsule version {existing} DIR' after changing it"
            )
        cx.confirm(f"mint {result.manifest['name']!r} ({result.manifest['kind']})")
        capsule_id = cx.cf.mint(
            result, parents=edges, parent_credentials=list(parent_credentials), uri=uri, sender=sender
        )
        data = capsule_json(cx, capsule_id)
        data["name"] = result.manifest["name"]
        if cx.as_json:
            cx.out(data, "")
        else:
            click.echo(
                f"minted capsule {capsule_id}: {result.manifest['name']} ({result.manifest['kind']}), "
                f"manifest {result.cid}"
            )


@capsule_group.command("version")
@click.argument("previous_id", type=int)
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--uri", default="", help="tokenURI override.")
@click.option("--store-url", envvar="CODEXFIELD_STORE", help="Where the manifest goes.")
@click.option("--progress/--no-progress", default=None)
@chain_options(send=True)
def version_command(
    cx: Cx, previous_id: int, directory: Path, uri: str, store_url: str | None, progress: bool | None
) -> None:
    """Publish DIRECTORY as the next version of capsule PREVIOUS_ID (its owner only)."""
    with cx.session():
        sender = cx.sender
        _require_capsule(cx, previous_id)
        owner = str(cx.cf.registry.ownerOf(previous_id))
        if owner.lower() != sender.address.lower():
            raise CliError(
                f"capsule {previous_id} belongs to {owner}, not {sender.address}; only its owner publishes versions"
            )
        latest = int(cx.cf.registry.latest_version(previous_id))
        if latest != previous_id:
            raise CliError(f"capsule {previous_id} is not the latest version (that is {latest}); version {latest}")
        kind_name = capsule_json(cx, previous_id)["kind"]
        result = _pack_and_store(directory, kind_name, store_url, progress)
        if int(cx.cf.registry.capsule_by_hash(result.content_hash)):
            raise CliError("this content is already minted; change the files first")
        cx.confirm(f"publish a version of capsule {previous_id}")
        receipt = cx.cf.registry.publish_version(previous_id, result.content_hash, uri, sender=sender)
        new_id = int(receipt.return_value)
        data = capsule_json(cx, new_id)
        cx.out(data, f"capsule {new_id} is version {data['version']} of {previous_id}")


@capsule_group.command("state")
@click.argument("capsule_id", type=int)
@click.argument("state", type=click.Choice(sorted(STATES), case_sensitive=False))
@click.option("--reason", default="", help="Short reason (hashed into the event).")
@chain_options(send=True)
def state_command(cx: Cx, capsule_id: int, state: str, reason: str) -> None:
    """Set CAPSULE_ID's state: the owner deprecates or reactivates; an arbiter flags."""
    from eth_utils import keccak

    with cx.session():
        sender = cx.sender
        _require_capsule(cx, capsule_id)
        cx.confirm(f"set capsule {capsule_id} to {state}")
        cx.cf.registry.set_state(
            capsule_id, STATES[state.lower()], keccak(text=reason) if reason else b"\0" * 32, sender=sender
        )
        data = capsule_json(cx, capsule_id)
        cx.out(data, f"capsule {capsule_id} is {data['state']}")


@capsule_group.command("show")
@click.argument("capsule_id", type=int)
@chain_options(send=False)
def show_command(cx: Cx, capsule_id: int) -> None:
    """Print CAPSULE_ID's record: owner, hash, CID, version lineage, parents, state."""
    with cx.session():
        _require_capsule(cx, capsule_id)
        _print_capsule(cx, capsule_json(cx, capsule_id))
