"""Capsule manifests: pack a directory, hash it canonically, verify it later (DESIGN §4.1).

A manifest lists every regular file of a capsule directory (POSIX path, size, SHA-256 and
UnixFS CIDv1, as kubo's `ipfs add --cid-version=1` computes it: `codexfield.unixfs`) with
the capsule's metadata (name, kind, description, version, license reference, model/dataset
card, creator DID, parents). It is validated against `schemas/manifest.schema.json` and
serialised with RFC 8785 (JCS); the SHA-256 of those bytes is the capsule's on-chain
`content_hash`, and `cid_from_digest(content_hash)` its CIDv1 (what `tokenURI` derives).

    from codexfield.manifest import pack, verify
    result = pack("my-model/", kind="model", description="A tiny classifier")
    registry.mint(result.kind_id, result.content_hash, [], [], "", sender=creator)
    report = verify("my-model/", result.content_hash)
    assert report.ok, report.describe()

Metadata may also come from `capsule.toml` at the root of the directory (TOML is in the
standard library and takes comments); arguments passed to `pack` win over it. `capsule.toml`
is itself a file of the capsule and is listed and hashed like any other file.

`pack(..., car="capsule.car")` also writes a CARv1 of the whole capsule (every file's DAG, the
manifest, the UnixFS directory over them: `codexfield.car`), in the same single pass over the
bytes; `verify` accepts such a CAR in place of the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import rfc8785

from codexfield import unixfs
from codexfield.cid import CIDError, cid_from_digest, digest_from_cid
from codexfield.constants import Kind

SCHEMA_VERSION = 1
MANIFEST_FILE = "capsule.manifest.json"
METADATA_FILE = "capsule.toml"
CHUNK = 1 << 20
KIND_NAMES: tuple[str, ...] = tuple(k.name.lower() for k in Kind)
# Keys `capsule.toml` may set (besides `x-...` extensions); `files` and `schema_version` are computed.
METADATA_KEYS = (
    "name",
    "kind",
    "description",
    "version",
    "license",
    "model_card",
    "dataset_card",
    "creator",
    "parents",
    "created_at",
)


class ManifestError(ValueError):
    """A manifest, a capsule directory or a hash that cannot be used; the message says why and what to do."""


class PackError(ManifestError):
    """The directory cannot be packed as it is."""


# ---------------------------------------------------------------------------------------------
# schema, canonical form, hashes


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The published manifest JSON Schema (draft 2020-12)."""
    text = resources.files("codexfield").joinpath("schemas/manifest.schema.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(manifest)"


def _explain(error) -> str:
    """One readable line for a jsonschema error."""
    where = _where(error.absolute_path)
    keyword = error.validator
    if keyword == "pattern" and where.endswith(".path"):
        return (
            f"{where}: {error.instance!r} is not a relative POSIX path "
            "(no leading '/', no '.' or '..' segment, no '//', backslash or control character)"
        )
    if keyword == "pattern" and (where.endswith("sha256") or "sha256" in where):
        return f"{where}: {error.instance!r} is not 64 lower-case hex digits"
    if keyword == "pattern" and where.endswith(".cid"):
        return f"{where}: {error.instance!r} is not a base32 CIDv1 with a sha2-256 digest (bafkrei... or bafybei...)"
    if keyword == "enum" and where == "kind":
        return f"kind: {error.instance!r} is not one of {', '.join(KIND_NAMES)}"
    if keyword == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extensions = "patternProperties" in error.schema
        unknown = sorted(k for k in error.instance if k not in allowed and not (extensions and str(k).startswith("x-")))
        return f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}" + (
            " (or an 'x-...' extension key)" if extensions else ""
        )
    if keyword == "const" and where == "schema_version":
        return f"schema_version: {error.instance!r} is not supported; this tool reads version {SCHEMA_VERSION}"
    return f"{where}: {error.message}"


def validate(manifest: Mapping[str, Any]) -> None:
    """Raise `ManifestError` listing every way `manifest` breaks the schema or the file rules."""
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    problems = [_explain(e) for e in errors]
    files = manifest.get("files") if isinstance(manifest, Mapping) else None
    if not problems and isinstance(files, list):
        paths = [f["path"] for f in files]
        seen: set[str] = set()
        for p in paths:
            if p in seen:
                problems.append(f"files: {p!r} is listed twice")
            seen.add(p)
        if paths != sorted(paths):
            problems.append(
                "files: not sorted by path (code point order); re-create the manifest with 'codexfield pack'"
            )
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise ManifestError("the manifest is invalid:\n  - " + "\n  - ".join(shown))


def canonical(manifest: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) bytes of `manifest`: sorted keys, no whitespace, ES6 number form, UTF-8."""
    try:
        return rfc8785.dumps(manifest)
    except rfc8785.CanonicalizationError as exc:
        raise ManifestError(f"the manifest cannot be serialised canonically: {exc}") from None


def content_hash(manifest: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical manifest: the capsule's on-chain `content_hash`."""
    return hashlib.sha256(canonical(manifest)).digest()


def hash_hex(digest: bytes) -> str:
    """`0x`-prefixed lower-case hex, as ape and the chain show bytes32."""
    return "0x" + bytes(digest).hex()


def parse_hash(value: str | bytes) -> bytes:
    """A 32-byte content hash from bytes, `0x...`/plain hex, or a CID (`bafkrei...`, `ipfs://...`)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) != 32:
            raise ManifestError(f"a content hash has 32 bytes, got {len(raw)}")
        return raw
    text = value.strip()
    if text.startswith(("ipfs://", "b")) and not text.startswith("0x"):
        try:
            return digest_from_cid(text.lower())
        except CIDError:
            pass
    hexpart = text.removeprefix("0x").removeprefix("0X")
    try:
        raw = bytes.fromhex(hexpart)
    except ValueError:
        raise ManifestError(
            f"{value!r} is not a content hash: give 64 hex digits (0x...) or a CID (bafkrei...)"
        ) from None
    if len(raw) != 32:
        raise ManifestError(f"{value!r} is {len(raw)} bytes; a content hash is 32 bytes (64 hex digits)")
    return raw


def kind_name(kind: str | int | Kind) -> str:
    """The manifest spelling of a kind (`"inference_script"`) from a name, number or `Kind`."""
    if isinstance(kind, int):
        try:
            return Kind(kind).name.lower()
        except ValueError:
            raise ManifestError(
                f"kind {kind} does not exist; kinds are 1..{len(Kind)}: {', '.join(KIND_NAMES)}"
            ) from None
    text = str(kind).strip().lower().replace("-", "_").replace(" ", "_")
    if text.isdigit():
        return kind_name(int(text))
    if text not in KIND_NAMES:
        raise ManifestError(f"kind {kind!r} does not exist; use one of {', '.join(KIND_NAMES)}")
    return text


def kind_id(kind: str | int | Kind) -> int:
    """The on-chain kind number (1..7) of a kind."""
    return int(Kind[kind_name(kind).upper()])


def load_manifest(data: bytes | str) -> dict[str, Any]:
    """Parse and validate a manifest (any JSON formatting; its hash is that of its canonical form)."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"not a JSON manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError("not a manifest: the JSON document is not an object")
    validate(manifest)
    return manifest


# ---------------------------------------------------------------------------------------------
# walking and hashing a directory


@dataclass(frozen=True)
class _Entry:
    path: str  # POSIX, relative
    full: Path
    size: int


def _scan(root: Path, skip: set[Path]) -> list[_Entry]:
    """Every regular file under `root`, sorted by POSIX path; refuses links and special files."""
    found: list[_Entry] = []

    def visit(directory: Path, prefix: str) -> None:
        try:
            entries = list(os.scandir(directory))
        except PermissionError:
            raise PackError(
                f"cannot list {prefix or '.'}/ in {root}: permission denied; make it readable "
                "(chmod u+rx) or move it out of the capsule directory"
            ) from None
        for entry in entries:
            name = entry.name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise PackError(
                    f"{prefix}{os.fsencode(name)!r} in {root} has a name that is not valid UTF-8; "
                    "rename it (manifest paths are UTF-8 text)"
                ) from None
            rel = prefix + name
            full = Path(entry.path)
            if full in skip:
                continue
            if entry.is_symlink():
                raise PackError(
                    f"{rel} is a symbolic link (-> {os.readlink(full)}); capsules hold regular files only: "
                    "replace it with a copy of its target (cp -L) or remove it"
                )
            if entry.is_dir(follow_symlinks=False):
                visit(full, rel + "/")
                continue
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise PackError(
                    f"{rel} is not a regular file (a fifo, socket or device); remove it from the capsule directory"
                )
            if "\\" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
                raise PackError(
                    f"{rel!r} has a backslash or control character in its name; rename it "
                    "(manifest paths must stay portable)"
                )
            found.append(_Entry(rel, full, st.st_size))

    visit(root, "")
    found.sort(key=lambda e: e.path)
    return found


def _progress(total: int, enabled: bool | None, label: str):
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not enabled, leave=False)


def hash_stream(stream: BinaryIO, bar=None, chunk: int = CHUNK) -> tuple[int, str]:
    """(size, sha256 hex) of a binary stream read in chunks."""
    h = hashlib.sha256()
    size = 0
    while block := stream.read(chunk):
        h.update(block)
        size += len(block)
        if bar is not None:
            bar.update(len(block))
    return size, h.hexdigest()


def hash_stream_cid(
    stream: BinaryIO, bar=None, chunk: int = CHUNK, emit: unixfs.Emit | None = None
) -> tuple[int, str, unixfs.Node]:
    """(size, sha256 hex, UnixFS root node) of a binary stream, in one pass; `emit(cid, block)`
    receives every UnixFS block (e.g. a `CarWriter`)."""
    h = hashlib.sha256()
    builder = unixfs.FileBuilder(emit)
    size = 0
    while block := stream.read(chunk):
        h.update(block)
        builder.write(block)
        size += len(block)
        if bar is not None:
            bar.update(len(block))
    return size, h.hexdigest(), builder.finish()


def _hash_entry(entry: _Entry, bar, emit: unixfs.Emit | None = None) -> dict[str, Any]:
    return _hash_entry_node(entry, bar, emit)[0]


def _hash_entry_node(entry: _Entry, bar, emit: unixfs.Emit | None = None) -> tuple[dict[str, Any], unixfs.Node]:
    try:
        with open(entry.full, "rb") as fh:
            size, digest, node = hash_stream_cid(fh, bar, emit=emit)
    except PermissionError:
        raise PackError(
            f"cannot read {entry.path}: permission denied; make it readable (chmod u+r) or move it out of the directory"
        ) from None
    except FileNotFoundError:
        raise PackError(
            f"{entry.path} disappeared while packing; run pack again when the directory is stable"
        ) from None
    except OSError as exc:
        raise PackError(f"cannot read {entry.path}: {exc.strerror}") from None
    if size != entry.size:
        raise PackError(f"{entry.path} changed while it was hashed ({entry.size} -> {size} bytes); run pack again")
    return {"path": entry.path, "size": size, "sha256": digest, "cid": str(node.cid)}, node


def hash_files(
    directory: str | os.PathLike[str], *, skip: Iterable[str | os.PathLike[str]] = (), progress: bool | None = None
) -> list[dict[str, Any]]:
    """The `files` list of `directory`: sorted, POSIX paths, streaming SHA-256 and UnixFS CID
    (tqdm bar over bytes). The root-level `capsule.manifest.json` and any path in `skip` are left out.
    """
    return [f for f, _ in _hash_files(directory, skip=skip, progress=progress)]


def _hash_files(directory, *, skip=(), progress=None, emit=None) -> list[tuple[dict[str, Any], unixfs.Node]]:
    root = _root(directory)
    skipped = {root / MANIFEST_FILE, *(Path(p).resolve() for p in skip)}
    entries = _scan(root, skipped)
    with _progress(sum(e.size for e in entries), progress, f"hashing {root.name or root}") as bar:
        return [_hash_entry_node(e, bar, emit) for e in entries]


def _root(directory: str | os.PathLike[str]) -> Path:
    root = Path(directory).resolve()
    if not root.exists():
        raise PackError(f"{directory} does not exist")
    if not root.is_dir():
        raise PackError(f"{directory} is not a directory; pack takes the directory that holds the capsule's files")
    return root


def read_metadata(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata in `<directory>/capsule.toml` (empty if there is none)."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise PackError(f"{path} is not UTF-8 text") from None
    unknown = sorted(k for k in data if k not in METADATA_KEYS and not k.startswith("x-"))
    if unknown:
        raise PackError(
            f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(METADATA_KEYS)} or 'x-...' extensions"
        )
    return data


# ---------------------------------------------------------------------------------------------
# pack


@dataclass(frozen=True)
class PackResult:
    """A packed capsule: its manifest, canonical bytes, content hash and CID; `root_cid` is the
    UnixFS directory of the files plus `capsule.manifest.json` (the CAR's root, and what
    `ipfs add -r --hidden --cid-version=1` prints for the directory holding exactly those files),
    `car` the CAR written by `pack(..., car=...)`."""

    manifest: dict[str, Any]
    canonical: bytes
    content_hash: bytes
    cid: str
    root_cid: str | None = None
    car: Path | None = None

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.manifest["files"]

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f["size"] for f in self.files)

    @property
    def kind_id(self) -> int:
        """The on-chain kind number to mint with."""
        return kind_id(self.manifest["kind"])

    @property
    def content_hash_hex(self) -> str:
        return hash_hex(self.content_hash)


def build(manifest: Mapping[str, Any]) -> PackResult:
    """Validate a complete manifest and derive its canonical bytes, hash and CID."""
    manifest = dict(manifest)
    validate(manifest)
    data = canonical(manifest)
    digest = hashlib.sha256(data).digest()
    return PackResult(manifest=manifest, canonical=data, content_hash=digest, cid=cid_from_digest(digest))


def pack(
    directory: str | os.PathLike[str],
    *,
    name: str | None = None,
    kind: str | int | Kind | None = None,
    description: str | None = None,
    version: str | None = None,
    progress: bool | None = None,
    metadata: bool = True,
    skip: Iterable[str | os.PathLike[str]] = (),
    car: str | os.PathLike[str] | None = None,
    **extra: Any,
) -> PackResult:
    """Pack `directory` into a manifest; nothing is written (see `write_manifest` and the stores)
    except the CAR at `car` when given (the capsule's blocks, written as the files are hashed).

    Metadata: `capsule.toml` (unless `metadata=False`), overridden by the arguments; `name`
    defaults to the directory's name. `extra` takes the other manifest fields: `license`,
    `model_card`, `dataset_card`, `creator`, `parents`, `created_at`, `x_...` (written `x-...`).
    `progress` shows a tqdm bar on stderr (default: when stderr is a terminal).
    """
    root = _root(directory)
    fields: dict[str, Any] = read_metadata(root) if metadata else {}
    given = {"name": name, "kind": kind, "description": description, "version": version}
    for key, value in extra.items():
        given[key.replace("_", "-", 1) if key.startswith("x_") else key] = value
    fields.update({k: v for k, v in given.items() if v is not None})
    fields.setdefault("name", Path(directory).absolute().name or root.name)
    if "kind" not in fields:
        raise PackError(
            f"the capsule's kind is not set: pass --kind ({', '.join(KIND_NAMES)}) "
            f'or write kind = "..." in {METADATA_FILE}'
        )
    fields["kind"] = kind_name(fields["kind"])
    from codexfield.car import CarWriter

    try:
        writer = CarWriter(car) if car is not None else None
    except OSError as exc:
        raise PackError(f"cannot write the CAR {car} ({exc.strerror}); choose a writable path for --car") from None
    try:
        own = [car, writer._body_path] if writer is not None else []  # the CAR may be written inside the directory
        hashed = _hash_files(root, skip=[*skip, *own], progress=progress, emit=writer)
        if not hashed:
            raise PackError(
                f"{directory} holds no files (empty directories are not recorded); there is nothing to pack"
            )
        manifest = {"schema_version": SCHEMA_VERSION, **fields, "files": [f for f, _ in hashed]}
        result = build(manifest)
        nodes = {f["path"]: node for f, node in hashed}
        nodes[MANIFEST_FILE] = unixfs.bytes_cid(result.canonical, writer)
        try:
            root_node = unixfs.directory_dag(nodes, writer)
        except unixfs.UnixFSError as exc:
            raise PackError(str(exc)) from None
        written = None
        if writer is not None:
            roots = [root_node.cid]
            if len(result.canonical) > unixfs.CHUNK_SIZE:  # chunked in the directory: add the on-chain raw block
                raw = unixfs.make_cid(unixfs.RAW, result.canonical)
                writer.add(raw, result.canonical)
                roots.append(raw)
            try:
                written = writer.close(roots)
            except OSError as exc:
                raise PackError(f"cannot write the CAR {car} ({exc.strerror})") from None
            writer = None
    finally:
        if writer is not None:
            writer.abort()
    return PackResult(
        result.manifest, result.canonical, result.content_hash, result.cid, root_cid=str(root_node.cid), car=written
    )


def pack_car(directory: str | os.PathLike[str], out: str | os.PathLike[str], **kwargs: Any) -> PackResult:
    """`pack` that also writes the capsule's CARv1 to `out` (see `codexfield.car`)."""
    return pack(directory, car=out, **kwargs)


def write_manifest(result: PackResult, path: str | os.PathLike[str]) -> Path:
    """Write the canonical manifest bytes to `path` atomically."""
    from codexfield.store import _atomic_write

    target = Path(path)
    _atomic_write(target, result.canonical)
    return target


# ---------------------------------------------------------------------------------------------
# verify


@dataclass(frozen=True)
class FileChange:
    """A file whose size or hash differs from the manifest."""

    path: str
    expected_size: int
    actual_size: int
    expected_sha256: str
    actual_sha256: str
    expected_cid: str | None = None
    actual_cid: str | None = None

    def describe(self) -> str:
        if self.expected_size != self.actual_size:
            return f"changed  {self.path}: size {self.expected_size} -> {self.actual_size} bytes"
        if self.expected_sha256 != self.actual_sha256:
            return f"changed  {self.path}: sha256 {self.expected_sha256[:12]}... -> {self.actual_sha256[:12]}..."
        return f"changed  {self.path}: cid {self.expected_cid} -> {self.actual_cid}"


def _differs(want: Mapping[str, Any], size: int, sha256: str, cid: str | None) -> bool:
    return (
        size != want["size"] or sha256 != want["sha256"] or ("cid" in want and cid is not None and cid != want["cid"])
    )


@dataclass
class VerifyResult:
    """The outcome of `verify`: `ok`, and otherwise exactly what differs."""

    expected_hash: bytes
    source: str | None = None  # where the reference manifest came from
    manifest_hash: bytes | None = None  # hash of the reference manifest (== expected when it matched)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[FileChange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures: verification is not ok
    notes: list[str] = field(default_factory=list)  # information only (ignored manifests, store errors)
    what: str = "directory"  # or "CAR"

    @property
    def manifest_matches(self) -> bool:
        return self.manifest_hash == self.expected_hash

    @property
    def ok(self) -> bool:
        return self.manifest_matches and not (self.missing or self.extra or self.changed or self.problems)

    @property
    def expected_cid(self) -> str:
        return cid_from_digest(self.expected_hash)

    def describe(self) -> str:
        """A report a person can act on: one line per difference."""
        lines = []
        if self.ok:
            lines.append(f"OK: the {self.what} matches {hash_hex(self.expected_hash)} ({self.expected_cid})")
            lines += [f"note: {n}" for n in self.notes]
            return "\n".join(lines)
        lines.append(f"MISMATCH: the {self.what} does not match {hash_hex(self.expected_hash)} ({self.expected_cid})")
        lines.extend(self.problems)
        if self.source and self.manifest_hash is not None and not self.manifest_matches:
            lines.append(
                f"the manifest {self.source} hashes to {hash_hex(self.manifest_hash)}, not the expected hash: "
                "its metadata or file list differ from the capsule's; the file differences below are against it"
            )
        lines += [f"missing  {p}" for p in self.missing]
        lines += [f"extra    {p}" for p in self.extra]
        lines += [c.describe() for c in self.changed]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "expected_hash": hash_hex(self.expected_hash),
            "expected_cid": self.expected_cid,
            "manifest_source": self.source,
            "manifest_hash": hash_hex(self.manifest_hash) if self.manifest_hash is not None else None,
            "missing": self.missing,
            "extra": self.extra,
            "changed": [c.__dict__ for c in self.changed],
            "problems": self.problems,
            "notes": self.notes,
        }


def _candidates(root: Path, digest: bytes, manifest: bytes | Mapping[str, Any] | None, store, notes: list[str]):
    """(source, manifest dict) pairs that may be the capsule's manifest, best first."""
    if manifest is not None:
        yield "given", dict(manifest) if isinstance(manifest, Mapping) else manifest
    local = root / MANIFEST_FILE
    if local.is_file():
        yield f"{MANIFEST_FILE} in the directory", local.read_bytes()
    if store is not None:
        yield from _candidates_store(store, digest, notes)


def _candidates_store(store, digest: bytes, notes: list[str]):
    from codexfield.store import NotFound, StoreError

    try:
        yield f"in {store!r}", store.get(cid_from_digest(digest))
    except NotFound:
        pass
    except StoreError as exc:
        notes.append(f"could not read the manifest from the store: {exc}")


def verify(
    directory: str | os.PathLike[str],
    expected_hash: str | bytes,
    *,
    manifest: bytes | Mapping[str, Any] | None = None,
    store=None,
    progress: bool | None = None,
) -> VerifyResult:
    """Re-hash `directory` and compare it with the capsule whose content hash is `expected_hash`.

    The reference manifest is the first of: `manifest`, `<directory>/capsule.manifest.json`,
    the object `cid(expected_hash)` in `store` — whose canonical hash equals `expected_hash`
    (if none does, the first readable one is used to diff the files). Without any manifest the
    directory is re-packed (with `capsule.toml`) and only the hashes are compared.
    """
    expected = parse_hash(expected_hash)
    if Path(directory).is_file():
        from codexfield.car import is_car

        if not is_car(directory):
            raise ManifestError(
                f"{directory} is neither a directory nor a CAR file; verify takes a capsule directory or its .car"
            )
        return _verify_car(Path(directory), expected, manifest, store, progress)
    root = _root(directory)
    result = VerifyResult(expected_hash=expected)
    reference = _pick(_candidates(root, expected, manifest, store, result.notes), expected, result)
    if reference is None:
        try:
            repacked = pack(root, progress=progress)
        except PackError as exc:
            result.problems.append(f"no manifest found ({MANIFEST_FILE} or the store), and re-packing failed: {exc}")
            return result
        result.source, result.manifest_hash = "re-packed from the directory", repacked.content_hash
        if not result.manifest_matches:
            result.problems.append(
                f"no manifest was found ({MANIFEST_FILE} in the directory, or {cid_from_digest(expected)} in the "
                f"store) and the directory re-packs to {repacked.content_hash_hex}; put the capsule's manifest "
                f"beside the files or pass --store to list which files differ"
            )
        return result
    _diff(root, reference, result, progress)
    return result


def _pick(candidates, expected: bytes, result: VerifyResult) -> dict[str, Any] | None:
    """The first candidate manifest whose hash is `expected`, else the first readable one."""
    reference: dict[str, Any] | None = None
    for source, raw in candidates:
        try:
            parsed = raw if isinstance(raw, dict) else load_manifest(raw)
            if isinstance(raw, dict):
                validate(parsed)
            digest = content_hash(parsed)
        except ManifestError as exc:
            result.notes.append(f"ignored the manifest {source}: {exc}")
            continue
        if digest == expected:
            reference, result.source, result.manifest_hash = parsed, source, digest
            break
        if reference is None:
            reference, result.source, result.manifest_hash = parsed, source, digest
    return reference


def _verify_car(path: Path, expected: bytes, manifest, store, progress: bool | None) -> VerifyResult:
    """`verify` for a capsule CAR: every block read is hash-checked, every listed file's DAG must be
    complete, its CID the manifest's and its bytes hash to the manifest's SHA-256."""
    from codexfield.car import CarError, CarReader, capsule_files, read_file

    result = VerifyResult(expected_hash=expected, what="CAR")
    try:
        reader = CarReader(path)
    except CarError as exc:
        result.problems.append(str(exc))
        return result
    with reader:
        try:
            present = capsule_files(reader)
        except CarError as exc:
            result.problems.append(str(exc))
            return result

        def candidates():
            if manifest is not None:
                yield "given", dict(manifest) if isinstance(manifest, Mapping) else manifest
            if MANIFEST_FILE in present:
                try:
                    yield f"{MANIFEST_FILE} in the CAR", read_file(reader, present[MANIFEST_FILE])
                except CarError as exc:
                    result.notes.append(f"could not read {MANIFEST_FILE} from the CAR: {exc}")
            raw = cid_from_digest(expected)
            if raw in reader and str(present.get(MANIFEST_FILE)) != raw:
                try:
                    yield "the manifest block in the CAR", reader.get(raw)
                except CarError as exc:
                    result.notes.append(f"could not read the manifest block from the CAR: {exc}")
            if store is not None:
                yield from _candidates_store(store, expected, result.notes)

        reference = _pick(candidates(), expected, result)
        if reference is None:
            result.problems.append(
                f"the CAR {path} holds no readable manifest ({MANIFEST_FILE} at its root) and none was given or found "
                "in the store; write the CAR with 'codexfield pack DIR --car OUT.car'"
            )
            return result
        listed = {f["path"]: f for f in reference["files"]}
        files = {p: c for p, c in present.items() if p != MANIFEST_FILE}
        result.missing = sorted(p for p in listed if p not in files)
        result.extra = sorted(p for p in files if p not in listed)
        common = sorted(p for p in listed if p in files)
        with _progress(sum(listed[p]["size"] for p in common), progress, "verifying") as bar:
            for p in common:
                want, cid = listed[p], str(files[p])
                h, size = hashlib.sha256(), 0
                try:
                    for block in unixfs.cat(reader.get, files[p]):
                        h.update(block)
                        size += len(block)
                        bar.update(len(block))
                except unixfs.UnixFSError as exc:
                    result.problems.append(f"{p}: {exc}")
                    continue
                if _differs(want, size, h.hexdigest(), cid):
                    result.changed.append(
                        FileChange(p, want["size"], size, want["sha256"], h.hexdigest(), want.get("cid"), cid)
                    )
    return result


def _diff(root: Path, reference: Mapping[str, Any], result: VerifyResult, progress: bool | None) -> None:
    listed = {f["path"]: f for f in reference["files"]}
    try:
        present = {e.path: e for e in _scan(root, {root / MANIFEST_FILE})}
    except PackError as exc:
        result.problems.append(str(exc))
        return
    result.missing = sorted(p for p in listed if p not in present)
    result.extra = sorted(p for p in present if p not in listed)
    common = sorted(p for p in listed if p in present)
    with _progress(sum(present[p].size for p in common), progress, "verifying") as bar:
        for p in common:
            want = listed[p]
            try:
                got = _hash_entry(present[p], bar)
            except PackError as exc:
                result.problems.append(str(exc))
                continue
            if _differs(want, got["size"], got["sha256"], got["cid"]):
                result.changed.append(
                    FileChange(p, want["size"], got["size"], want["sha256"], got["sha256"], want.get("cid"), got["cid"])
                )


# ---------------------------------------------------------------------------------------------
# the chain


def onchain_content_hash(registry, capsule_id: int) -> bytes:
    """`CapsuleRegistry.capsule(capsule_id).content_hash` read through an ape contract."""
    from ape.exceptions import ContractLogicError

    try:
        record = registry.capsule(capsule_id)
    except ContractLogicError as exc:
        if "unknown capsule" in str(exc):
            raise ManifestError(f"capsule {capsule_id} does not exist on the registry at {registry.address}") from None
        raise
    return bytes(record.content_hash)


def verify_capsule(directory: str | os.PathLike[str], registry, capsule_id: int, **kwargs: Any) -> VerifyResult:
    """`verify` against the content hash the registry holds for `capsule_id`."""
    return verify(directory, onchain_content_hash(registry, capsule_id), **kwargs)
