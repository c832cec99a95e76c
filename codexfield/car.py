"""CARv1 files (Content Addressable aRchives): a capsule's whole DAG in one file.

Format (ipld.io/specs/transport/car/carv1): `varint(len) ‖ dag-cbor {"roots": [CID...], "version": 1}`,
then for every block `varint(len(cid) + len(data)) ‖ cid ‖ data`. The header is encoded with
PyPI `dag-cbor`, CIDs with `multiformats`.

A capsule CAR (`codexfield pack DIR --car OUT.car`, `codexfield.manifest.pack(..., car=...)`)
holds every file's UnixFS DAG, the manifest block and the UnixFS directory over both:

    root directory  (dag-pb, the first and usually only root; = `ipfs add -r --hidden --cid-version=1 DIR`)
    ├── capsule.manifest.json  -> the manifest: one raw block, CID = cid(content_hash) (the on-chain CID)
    └── every file of the manifest, at its path

A manifest larger than one chunk (256 KiB) is chunked inside the directory like any file, so
its raw block (the on-chain CID) is added as well and listed as a second root. Every read here
is hash-checked: `CarReader.get` re-hashes the block against its CID.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import dag_cbor
from multiformats import CID

from codexfield import unixfs
from codexfield.unixfs import UnixFSError, check_block, parse_cid

CAR_SUFFIX = ".car"


class CarError(UnixFSError):
    """A file that is not a readable CARv1, a block that does not match its CID, or a missing block."""


def _uvarint(n: int) -> bytes:
    return unixfs._uvarint(n)


def _read_uvarint(fh: BinaryIO) -> int | None:
    shift = result = 0
    first = True
    while True:
        byte = fh.read(1)
        if not byte:
            if first:
                return None
            raise CarError("the CAR ends inside a length prefix (truncated file)")
        first = False
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise CarError("a CAR length prefix is longer than 64 bits")


def encode_header(roots: Iterable[CID]) -> bytes:
    header = dag_cbor.encode({"roots": [parse_cid(r) for r in roots], "version": 1})
    return _uvarint(len(header)) + header


def encode_block(cid: CID | bytes, data: bytes) -> bytes:
    raw = bytes(cid)
    return _uvarint(len(raw) + len(data)) + raw + data


def is_car(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a file that starts like a CARv1 (a dag-cbor header with `version: 1`)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with open(p, "rb") as fh:
            length = _read_uvarint(fh)
            if length is None or length > 1 << 20:
                return False
            header = dag_cbor.decode(fh.read(length))
    except Exception:
        return False
    return isinstance(header, dict) and header.get("version") == 1 and isinstance(header.get("roots"), list)


class CarWriter:
    """Collects blocks (each once) into a CARv1 written atomically at `path` by `close(roots)`.

    Blocks go to a temporary body file beside `path` as they come (roots are known only at the
    end, and the header comes first), so memory stays flat however large the capsule is."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".car-body-", suffix=".part")
        self._body_path = Path(tmp)
        self._body = os.fdopen(fd, "wb")
        self._seen: set[bytes] = set()
        self.blocks = 0

    def add(self, cid: CID | bytes, data: bytes) -> None:
        key = bytes(cid)
        if key in self._seen:
            return
        self._seen.add(key)
        self._body.write(encode_block(key, data))
        self.blocks += 1

    __call__ = add  # usable as a `unixfs.Emit` callback

    def close(self, roots: Iterable[CID]) -> Path:
        from codexfield.store import _atomic_write_stream

        self._body.close()
        try:
            with open(self._body_path, "rb") as body:
                _atomic_write_stream(self.path, encode_header(roots), body)
        finally:
            self._body_path.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        self._body.close()
        self._body_path.unlink(missing_ok=True)


class CarReader:
    """Random access to the blocks of a CARv1 file; `get` re-hashes every block it returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._index: dict[bytes, tuple[int, int]] = {}
        self.order: list[CID] = []
        try:
            self._fh = open(self.path, "rb")
        except FileNotFoundError:
            raise CarError(f"{path}: no such file") from None
        except OSError as exc:
            raise CarError(f"cannot read {path} ({exc.strerror})") from None
        try:
            self.roots = self._read_header()
            self._scan()
        except BaseException:
            self._fh.close()
            raise

    def __enter__(self) -> CarReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    def _read_header(self) -> list[CID]:
        length = _read_uvarint(self._fh)
        if length is None or length > 1 << 20:
            raise CarError(f"{self.path} is not a CAR file (no CARv1 header)")
        try:
            header = dag_cbor.decode(self._fh.read(length))
        except Exception as exc:
            raise CarError(f"{self.path} is not a CAR file (bad header: {exc})") from None
        if not isinstance(header, dict) or header.get("version") != 1:
            raise CarError(
                f"{self.path} is not a CARv1 file (header version {header.get('version') if isinstance(header, dict) else '?'}); "
                "convert a CARv2 with 'car convert' or re-export it as CARv1"
            )
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
            raise CarError(f"{self.path}: the CAR header's roots are not a list of CIDs")
        return [parse_cid(r) for r in roots]

    def _scan(self) -> None:
        fh = self._fh
        while True:
            start = fh.tell()
            length = _read_uvarint(fh)
            if length is None:
                return
            section = fh.tell()
            head = fh.read(min(length, 80))
            try:
                cid = CID.decode(_cid_prefix(head))
            except Exception as exc:
                raise CarError(f"{self.path}: the block at byte {start} does not start with a CID ({exc})") from None
            raw = bytes(cid)
            data_len = length - len(raw)
            if data_len < 0:
                raise CarError(f"{self.path}: the block at byte {start} is shorter than its CID")
            fh.seek(section + length)
            if fh.tell() > os.fstat(fh.fileno()).st_size:
                raise CarError(
                    f"{self.path} is truncated: the block {parse_cid(cid)} at byte {start} runs past the end"
                )
            if raw not in self._index:
                self._index[raw] = (section + len(raw), data_len)
                self.order.append(parse_cid(cid))

    def __contains__(self, cid: object) -> bool:
        try:
            return unixfs._key(cid) in self._index  # type: ignore[arg-type]
        except UnixFSError:
            return False

    def __len__(self) -> int:
        return len(self._index)

    def get(self, cid: CID | str | bytes) -> bytes:
        cid = unixfs._key(cid)
        where = self._index.get(cid)
        if where is None:
            raise CarError(f"the CAR {self.path} lacks the block {parse_cid(cid)}: it is incomplete")
        self._fh.seek(where[0])
        data = self._fh.read(where[1])
        try:
            return check_block(cid, data, f"the CAR {self.path}")
        except UnixFSError as exc:
            raise CarError(str(exc)) from None

    def blocks(self) -> Iterator[tuple[CID, bytes]]:
        """Every block (hash-checked), in file order."""
        for cid in list(self.order):
            yield cid, self.get(cid)


def _cid_prefix(head: bytes) -> bytes:
    """The binary CIDv1 at the start of `head` (version, codec, multihash code, length, digest)."""
    pos = 0
    values = []
    for _ in range(4):
        shift = value = 0
        while True:
            byte = head[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        values.append(value)
    if values[0] != 1:
        raise CarError("only CIDv1 blocks are supported (this one is CIDv0 or not a CID)")
    return head[: pos + values[3]]


def dag_blocks(get_block, root: CID | str) -> Iterator[tuple[CID, bytes]]:
    """(binary CID, block) of every block of the DAG under `root` (each once, depth first),
    fetched by `get_block` and hash-checked."""
    seen: set[bytes] = set()
    stack = [unixfs._key(root)]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        data = check_block(cid, get_block(cid))
        yield cid, data
        stack.extend(reversed(unixfs.links_of(cid, data)))


def write_dag_car(get_block, roots: list[CID | str], path: str | os.PathLike[str]) -> Path:
    """Write a CAR of the complete DAGs under `roots` (every block read through `get_block`, hash-checked)."""
    writer = CarWriter(path)
    try:
        for root in roots:
            for cid, data in dag_blocks(get_block, root):
                writer.add(cid, data)
    except BaseException:
        writer.abort()
        raise
    return writer.close([parse_cid(r) for r in roots])


def check_complete(reader: CarReader, roots: list[CID] | None = None) -> int:
    """Walk every DAG under `roots` (default: the CAR's roots); every block must be present and
    match its CID. Returns the number of blocks reached."""
    return sum(1 for root in (roots or reader.roots) for _ in dag_blocks(reader.get, root))


# ------------------------------------------------------------------------------ capsules in CARs


def capsule_files(reader: CarReader) -> dict[str, CID]:
    """POSIX path -> file CID of every file under the CAR's first root (a UnixFS directory)."""
    if not reader.roots:
        raise CarError(f"the CAR {reader.path} has no root")
    try:
        return {path: parse_cid(cid) for path, cid in unixfs.walk(reader.get, reader.roots[0])}
    except CarError:
        raise
    except UnixFSError as exc:
        raise CarError(f"the CAR {reader.path}'s root {reader.roots[0]} is not a capsule directory: {exc}") from None


def read_file(reader: CarReader, cid: CID | str) -> bytes:
    """The whole content of a (small) UnixFS file in the CAR."""
    return b"".join(unixfs.cat(reader.get, cid))


def read_capsule_file(car_path: str | os.PathLike[str], path: str) -> bytes:
    """The content of the file at `path` inside the capsule CAR (hash-checked block by block)."""
    with CarReader(car_path) as reader:
        files = capsule_files(reader)
        if path not in files:
            raise CarError(f"the capsule CAR {car_path} has no file {path!r}")
        return read_file(reader, files[path])


def capsule_reader(car_path: str | os.PathLike[str]):
    """`read(path) -> bytes` over the files of a capsule CAR (the CAR is indexed once; every block
    read is hash-checked). Used by the node to serve a model capsule straight from its CAR."""
    with CarReader(car_path) as reader:
        files = capsule_files(reader)

    def read(path: str) -> bytes:
        if path not in files:
            raise CarError(f"the capsule CAR {car_path} has no file {path!r}")
        with CarReader(car_path) as again:
            return read_file(again, files[path])

    return read


def extract(car_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[str]:
    """Write every file of the capsule CAR under `dest`; returns the paths written."""
    from codexfield.store import _atomic_write_stream

    out = Path(dest)
    written = []
    with CarReader(car_path) as reader:
        for path, cid in capsule_files(reader).items():
            target = out / path
            if ".." in Path(path).parts or Path(path).is_absolute():
                raise CarError(f"the CAR holds an unsafe path {path!r}")
            _atomic_write_stream(target, b"", _Chunks(unixfs.cat(reader.get, cid)))
            written.append(path)
    return written


class _Chunks:
    """A read()-able view of an iterator of byte strings."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = chunks

    def read(self, n: int = -1) -> bytes:
        return next(self._it, b"")
