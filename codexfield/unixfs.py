"""UnixFS CIDs exactly as kubo's `ipfs add --cid-version=1` computes them, without a daemon.

kubo's defaults for `--cid-version=1` (kubo `docs/config.md`, `Import.*`; boxo `ipld/unixfs`):

| setting | value |
|---|---|
| chunker | `size-262144`: fixed 256 KiB chunks |
| leaves | raw blocks (codec `raw` 0x55): `--cid-version=1` implies `--raw-leaves` |
| layout | balanced DAG, at most 174 links per node (`helpers.DefaultLinksPerBlock`) |
| inner nodes | dag-pb (0x70) `PBNode{Links, Data=UnixFS{Type=File, filesize, blocksizes}}` |
| directories | dag-pb `UnixFS{Type=Directory}`, links sorted by name, `Tsize` = cumulative size |
| hash | sha2-256; CIDs printed in base32 (`bafkrei...` raw, `bafybei...` dag-pb) |

A file of at most one chunk is a single raw leaf, so its CID is the raw CID of its bytes (the
empty file too). Larger files stream: `FileBuilder.write` takes any slices, keeps at most one
chunk and one pending list of links per tree level (flat memory for GB files), and hands each
finished block to an optional `emit(binary_cid, data)` callback (the CAR writer). CIDs are
`multiformats.CID` values (PyPI `multiformats`); only the two small protobuf messages (dag-pb
`PBNode`/`PBLink` and UnixFS `Data`) are encoded here, as no maintained Python library does.

Directories hold at most `HAMT_THRESHOLD` bytes of link names + CIDs: past that kubo would
shard them as a HAMT, which is not implemented; `directory_dag` refuses such a directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from multiformats import CID, multihash

CHUNK_SIZE = 262_144
MAX_LINKS = 174
HAMT_THRESHOLD = 262_144  # kubo Import.UnixFSHAMTDirectorySizeThreshold (links-bytes estimate)
RAW = "raw"
DAG_PB = "dag-pb"

# UnixFS Data.Type
T_RAW, T_DIRECTORY, T_FILE, T_METADATA, T_SYMLINK, T_HAMT = 0, 1, 2, 3, 4, 5

RAW_CODE, DAG_PB_CODE = 0x55, 0x70
# `emit(binary_cid, block)`: the binary CIDv1 (bytes(CID)); `parse_cid` turns it into a CID.
Emit = Callable[[bytes, bytes], None]


class UnixFSError(ValueError):
    """Bytes that are not the dag-pb/UnixFS a kubo-compatible importer writes, or a tree it cannot build."""


def make_cid(codec: str, data: bytes) -> CID:
    """CIDv1 (base32) of `data` under `codec`, sha2-256."""
    return CID("base32", 1, codec, multihash.wrap(hashlib.sha256(data).digest(), "sha2-256"))


def _cid_bytes(code: int, data: bytes) -> bytes:
    """Binary CIDv1 sha2-256 of `data` (codec `code` < 0x80): the hot path of the importer.

    Building a `multiformats.CID` per block would leave cyclic garbage (its type validation
    raises and catches exceptions whose tracebacks hold the callers' frames, hence the chunk)
    until the collector runs; binary CIDs keep memory flat, and are turned into `CID`s only
    where they leave this module (`Node.cid`, `parse_cid`)."""
    return bytes((1, code, 0x12, 0x20)) + hashlib.sha256(data).digest()


def parse_cid(text: str | bytes | CID) -> CID:
    """A `multiformats.CID` from a string (`ipfs://` accepted), binary CID or CID; base32 for display."""
    if isinstance(text, CID):
        cid = text
    else:
        try:
            if isinstance(text, (bytes, bytearray, memoryview)):
                cid = CID.decode(bytes(text))
            else:
                cid = CID.decode(text.strip().removeprefix("ipfs://").split("/")[0])
        except Exception as exc:  # multiformats raises several error types
            raise UnixFSError(f"{text!r} is not a CID: {exc}") from None
    if cid.version == 0:
        cid = cid.set(version=1)
    return cid.set(base="base32")


def _simple(raw: bytes) -> bool:
    """Whether a binary CID is CIDv1, one-byte codec, sha2-256 (every CID this importer writes)."""
    return len(raw) == 36 and raw[0] == 1 and raw[1] < 0x80 and raw[2] == 0x12 and raw[3] == 0x20


def codec_code(cid: CID | bytes) -> int:
    if isinstance(cid, bytes) and _simple(cid):
        return cid[1]
    return parse_cid(cid).codec.code


def check_block(cid: CID | bytes, data: bytes, where: str = "the block") -> bytes:
    """`data` if it hashes to `cid` (sha2-256 only), else `UnixFSError`."""
    if isinstance(cid, bytes) and _simple(cid):
        digest = cid[4:]
    else:
        cid = parse_cid(cid)
        if cid.hashfun.name != "sha2-256":
            raise UnixFSError(f"{cid} uses {cid.hashfun.name}; only sha2-256 CIDs are supported")
        digest = cid.raw_digest
    if hashlib.sha256(data).digest() != digest:
        raise UnixFSError(
            f"{where} for {parse_cid(cid)} does not hash to that CID: the copy is corrupt or was tampered with"
        )
    return data


# ------------------------------------------------------------------------------ protobuf


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(num: int, value: int) -> bytes:
    return _uvarint(num << 3) + _uvarint(value)


def _field_bytes(num: int, value: bytes) -> bytes:
    return _uvarint(num << 3 | 2) + _uvarint(len(value)) + value


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise UnixFSError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise UnixFSError("protobuf varint longer than 64 bits")


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_uvarint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_uvarint(buf, pos)
            yield num, value
        elif wire == 2:
            length, pos = _read_uvarint(buf, pos)
            if pos + length > len(buf):
                raise UnixFSError("truncated protobuf field")
            yield num, buf[pos : pos + length]
            pos += length
        else:
            raise UnixFSError(f"unexpected protobuf wire type {wire}")


@dataclass(frozen=True)
class Link:
    """A dag-pb link: child CID (a `CID` or binary CID), name ('' inside files) and cumulative size."""

    cid: CID | bytes
    name: str
    tsize: int


def encode_pbnode(links: Iterable[Link], data: bytes | None) -> bytes:
    """dag-pb `PBNode` in canonical form: links (field 2) first, then data (field 1)."""
    out = bytearray()
    for link in links:
        body = (
            _field_bytes(1, bytes(link.cid)) + _field_bytes(2, link.name.encode("utf-8")) + _field_varint(3, link.tsize)
        )
        out += _field_bytes(2, body)
    if data is not None:
        out += _field_bytes(1, data)
    return bytes(out)


def decode_pbnode(block: bytes) -> tuple[list[Link], bytes | None]:
    """(links, data) of a dag-pb block."""
    links: list[Link] = []
    data: bytes | None = None
    for num, value in _fields(block):
        if num == 2 and isinstance(value, bytes):
            cid, name, tsize = None, "", 0
            for n, v in _fields(value):
                if n == 1 and isinstance(v, bytes):
                    cid = v if _simple(v) else bytes(parse_cid(v))  # binary CID
                elif n == 2 and isinstance(v, bytes):
                    name = v.decode("utf-8", "strict")
                elif n == 3 and isinstance(v, int):
                    tsize = v
            if cid is None:
                raise UnixFSError("dag-pb link without a Hash")
            links.append(Link(cid, name, tsize))
        elif num == 1 and isinstance(value, bytes):
            data = value
        else:
            raise UnixFSError(f"unexpected dag-pb field {num}")
    return links, data


@dataclass(frozen=True)
class UnixFSData:
    type: int
    data: bytes = b""
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()


def encode_unixfs(node: UnixFSData) -> bytes:
    out = _field_varint(1, node.type)
    if node.data:
        out += _field_bytes(2, node.data)
    if node.filesize is not None:
        out += _field_varint(3, node.filesize)
    for size in node.blocksizes:  # proto2 `repeated uint64`, not packed
        out += _field_varint(4, size)
    return out


def decode_unixfs(buf: bytes) -> UnixFSData:
    kind, data, filesize, sizes = None, b"", None, []
    for num, value in _fields(buf):
        if num == 1 and isinstance(value, int):
            kind = value
        elif num == 2 and isinstance(value, bytes):
            data = value
        elif num == 3 and isinstance(value, int):
            filesize = value
        elif num == 4:
            if isinstance(value, int):
                sizes.append(value)
            else:  # tolerate the packed form
                pos = 0
                while pos < len(value):
                    v, pos = _read_uvarint(value, pos)
                    sizes.append(v)
    if kind is None:
        raise UnixFSError("UnixFS data without a Type")
    return UnixFSData(kind, data, filesize, tuple(sizes))


# ------------------------------------------------------------------------------ files


@dataclass(frozen=True)
class Node:
    """A finished (sub)DAG: its binary CID, the file bytes under it, and its cumulative block size."""

    raw: bytes
    size: int
    tsize: int

    @property
    def cid(self) -> CID:
        return parse_cid(self.raw)


class FileBuilder:
    """Streams a file into kubo's balanced UnixFS DAG; `finish()` returns the root `Node`."""

    def __init__(self, emit: Emit | None = None, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> None:
        self.emit = emit
        self.chunk_size = chunk_size
        self.max_links = max_links
        self._buf = bytearray()
        self._levels: list[list[Node]] = [[]]  # level 0: leaves
        self._leaves = 0
        self._done: Node | None = None

    def write(self, data: bytes) -> None:
        if self._done is not None:
            raise UnixFSError("write after finish")
        view = memoryview(data)
        if self._buf:
            need = self.chunk_size - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) < self.chunk_size:
                return
            self._leaf(bytes(self._buf))
            self._buf = bytearray()
        while len(view) >= self.chunk_size:
            self._leaf(bytes(view[: self.chunk_size]))
            view = view[self.chunk_size :]
        if len(view):
            self._buf = bytearray(view)

    def _block(self, code: int, data: bytes) -> bytes:
        cid = _cid_bytes(code, data)
        if self.emit is not None:
            self.emit(cid, data)
        return cid

    def _leaf(self, chunk: bytes) -> None:
        self._leaves += 1
        self._push(0, Node(self._block(RAW_CODE, chunk), len(chunk), len(chunk)))

    def _push(self, level: int, node: Node) -> None:
        if level == len(self._levels):
            self._levels.append([])
        pending = self._levels[level]
        if len(pending) == self.max_links:
            self._levels[level] = []
            self._push(level + 1, self._inner(pending))
            pending = self._levels[level]
        pending.append(node)

    def _inner(self, children: list[Node]) -> Node:
        data = encode_unixfs(
            UnixFSData(T_FILE, filesize=sum(c.size for c in children), blocksizes=tuple(c.size for c in children))
        )
        block = encode_pbnode([Link(c.raw, "", c.tsize) for c in children], data)
        return Node(
            self._block(DAG_PB_CODE, block), sum(c.size for c in children), len(block) + sum(c.tsize for c in children)
        )

    def finish(self) -> Node:
        if self._done is not None:
            return self._done
        if self._buf or self._leaves == 0:
            self._leaf(bytes(self._buf))  # the empty file is one empty raw leaf, as in kubo
            self._buf.clear()
        level = 0
        while True:
            pending = self._levels[level]
            higher = any(self._levels[level + 1 :])
            if len(pending) == 1 and not higher:
                self._done = pending[0]
                return self._done
            self._levels[level] = []
            if pending:
                self._push(level + 1, self._inner(pending))
            level += 1


def file_cid(stream, emit: Emit | None = None, read_size: int = 1 << 20) -> Node:
    """The UnixFS root of a binary stream (read in `read_size` slices)."""
    builder = FileBuilder(emit)
    while block := stream.read(read_size):
        builder.write(block)
    return builder.finish()


def bytes_cid(data: bytes, emit: Emit | None = None) -> Node:
    builder = FileBuilder(emit)
    builder.write(data)
    return builder.finish()


# ------------------------------------------------------------------------------ directories


def directory_node(entries: Mapping[str, Node], emit: Emit | None = None, where: str = ".") -> Node:
    """A plain UnixFS directory holding `entries` (name -> child node)."""
    ordered = sorted(entries.items(), key=lambda kv: kv[0].encode("utf-8"))
    estimate = sum(len(name.encode("utf-8")) + len(node.raw) for name, node in ordered)
    if estimate > HAMT_THRESHOLD:
        raise UnixFSError(
            f"the directory {where}/ has {len(ordered)} entries ({estimate} bytes of names and CIDs); kubo would "
            f"store it as a HAMT shard (over {HAMT_THRESHOLD} bytes), which codexfield does not build: "
            "split it into subdirectories"
        )
    block = encode_pbnode(
        [Link(node.raw, name, node.tsize) for name, node in ordered], encode_unixfs(UnixFSData(T_DIRECTORY))
    )
    cid = _cid_bytes(DAG_PB_CODE, block)
    if emit is not None:
        emit(cid, block)
    return Node(cid, sum(n.size for _, n in ordered), len(block) + sum(n.tsize for _, n in ordered))


def directory_dag(files: Mapping[str, Node], emit: Emit | None = None) -> Node:
    """The root directory of `files` (POSIX path -> file node), nested directories built bottom-up.

    Only directories that hold a file appear (as with a manifest, which records no empty one)."""
    tree: dict = {}
    for path, node in files.items():
        parts = path.split("/")
        here = tree
        for part in parts[:-1]:
            here = here.setdefault(part, {})
            if not isinstance(here, dict):
                raise UnixFSError(f"{path}: {part} is both a file and a directory")
        if parts[-1] in here:
            raise UnixFSError(f"{path} is listed twice")
        here[parts[-1]] = node

    def build(subtree: dict, where: str) -> Node:
        children = {
            name: (build(child, f"{where}/{name}") if isinstance(child, dict) else child)
            for name, child in subtree.items()
        }
        return directory_node(children, emit, where)

    return build(tree, ".")


# ------------------------------------------------------------------------------ reading


GetBlock = Callable[[CID], bytes]


def _key(cid: CID | str | bytes) -> bytes:
    if isinstance(cid, bytes) and _simple(cid):
        return cid
    return bytes(parse_cid(cid))


def cat(get_block: GetBlock, cid: CID | str | bytes) -> Iterator[bytes]:
    """The bytes of the UnixFS file `cid`, block by block (each block hash-checked here;
    `get_block` receives binary CIDs)."""
    cid = _key(cid)
    block = check_block(cid, get_block(cid))
    code = codec_code(cid)
    if code == RAW_CODE:
        yield block
        return
    if code != DAG_PB_CODE:
        raise UnixFSError(f"{parse_cid(cid)} has codec 0x{code:x}; a UnixFS file is raw or dag-pb")
    links, data = decode_pbnode(block)
    node = decode_unixfs(data or b"")
    if node.type not in (T_FILE, T_RAW):
        kind = "directory" if node.type in (T_DIRECTORY, T_HAMT) else f"node of type {node.type}"
        raise UnixFSError(f"{parse_cid(cid)} is a UnixFS {kind}, not a file")
    if node.data:
        yield node.data
    for link in links:
        yield from cat(get_block, link.cid)


def ls(get_block: GetBlock, cid: CID | str) -> list[Link]:
    """The entries of the UnixFS directory `cid`."""
    cid = parse_cid(cid)
    if cid.codec.name != DAG_PB:
        raise UnixFSError(f"{cid} is a raw block, not a directory")
    links, data = decode_pbnode(check_block(cid, get_block(cid)))
    node = decode_unixfs(data or b"")
    if node.type == T_HAMT:
        raise UnixFSError(f"{cid} is a HAMT-sharded directory, which codexfield does not read")
    if node.type != T_DIRECTORY:
        raise UnixFSError(f"{cid} is not a directory")
    return links


def is_directory(get_block: GetBlock, cid: CID | str) -> bool:
    cid = parse_cid(cid)
    if cid.codec.name != DAG_PB:
        return False
    _, data = decode_pbnode(check_block(cid, get_block(cid)))
    return decode_unixfs(data or b"").type in (T_DIRECTORY, T_HAMT)


def walk(get_block: GetBlock, root: CID | str, prefix: str = "") -> Iterator[tuple[str, CID]]:
    """(POSIX path, CID) of every file under the directory `root`, depth first, sorted by name."""
    for link in ls(get_block, root):
        path = prefix + link.name
        if is_directory(get_block, link.cid):
            yield from walk(get_block, link.cid, path + "/")
        else:
            yield path, link.cid


def links_of(cid: CID | bytes, block: bytes) -> list[bytes]:
    """The binary CIDs a block links to (none for raw blocks)."""
    code = codec_code(cid)
    if code == RAW_CODE:
        return []
    if code != DAG_PB_CODE:
        raise UnixFSError(f"{parse_cid(cid)} has codec 0x{code:x}; only raw and dag-pb DAGs are supported")
    return [link.cid for link in decode_pbnode(block)[0]]
