"""Content-addressed storage for capsule manifests (DESIGN §4.1).

Every backend speaks the same three calls, keyed by CIDv1 (raw, sha2-256, base32 `b...`):

    store = open_store()                 # LocalStore at $CODEXFIELD_STORE or ~/.codexfield/store
    cid = store.put(canonical_bytes)     # "bafkrei..."
    assert store.has(cid)
    data = store.get(cid)                # the hash is checked on every read

Backends, chosen by `open_store(spec)`:

| spec | backend |
|---|---|
| `None`, a path, `~/...` | `LocalStore`: a directory, one file per object, sharded like kubo's flatfs |
| `kubo+http://127.0.0.1:5001`, `http://host:5001/api/v0` | `IpfsHttpStore`: a kubo node's HTTP RPC API |
| `file:///dir/`, `https://gateway/ipfs/` | `UrlStore`: `<base><cid>`; writable for file://, read-only for http(s) |

A read whose bytes do not hash to the requested CID raises `IntegrityError`, whatever the backend.

Whole DAGs (a capsule's files as UnixFS, `codexfield.unixfs`) move as CARv1 files (`codexfield.car`),
keyed by any CIDv1 sha2-256 (raw `bafkrei...` or dag-pb `bafybei...`):

    roots = store.put_car("capsule.car")        # every block hash-checked; the DAGs must be complete
    store.get_car(roots[0], "copy.car")         # the complete DAG under the root, every block hash-checked
    block = store.get_block("bafybei...")       # one block, hash-checked

| backend | put_car | get_car / get_block |
|---|---|---|
| `LocalStore` | one file per block (same shards) | walks the DAG block by block |
| `IpfsHttpStore` | `POST /api/v0/dag/import?pin-roots=true` (streamed) | `POST /api/v0/dag/export`, `/api/v0/block/get` |
| `UrlStore` file:// | one file per block | walks the DAG block by block |
| `UrlStore` http(s) (gateway) | read-only | `GET <base><cid>?format=car` / `?format=raw` (trustless gateway) |
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from codexfield.cid import CIDError, cid_from_digest, cid_of, digest_from_cid
from codexfield.unixfs import UnixFSError, check_block, parse_cid

DEFAULT_STORE = Path("~/.codexfield/store")
ENV_STORE = "CODEXFIELD_STORE"
# kubo splits files larger than its chunk size into a UnixFS DAG whose root CID is not the raw
# CID of the bytes; one raw block holds at most 1 MiB (the largest block kubo accepts by default).
IPFS_MAX_RAW_BLOCK = 1 << 20


class StoreError(RuntimeError):
    """A storage backend could not do what was asked (missing object, unreachable node, read-only)."""


class NotFound(StoreError, KeyError):
    """The store does not hold the requested CID."""

    def __str__(self) -> str:  # KeyError would add quotes
        return str(self.args[0]) if self.args else "not found"


class IntegrityError(StoreError):
    """Bytes returned for a CID do not hash to that CID."""


@runtime_checkable
class Store(Protocol):
    """The storage interface: content in, CID out; CID in, verified content out."""

    def put(self, data: bytes) -> str: ...

    def get(self, cid: str) -> bytes: ...

    def has(self, cid: str) -> bool: ...

    def put_car(self, car: str | os.PathLike[str]) -> list[str]: ...

    def get_car(self, root: str, out: str | os.PathLike[str]) -> Path: ...

    def get_block(self, cid: str) -> bytes: ...


def _block_cid(cid):
    try:
        return parse_cid(cid)
    except UnixFSError as exc:
        raise StoreError(str(exc)) from None


def _checked_block(cid, data: bytes, where: str) -> bytes:
    try:
        return check_block(cid, data, where)
    except UnixFSError as exc:
        raise IntegrityError(f"{exc}; delete that copy and put the original again") from None


class _Dags:
    """`put_car` / `get_car` over a backend's `put_block` / `get_block`."""

    def put_block(self, cid, data: bytes) -> str:  # pragma: no cover - overridden
        raise StoreError(f"{self!r} is read-only")

    def get_block(self, cid) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def put_car(self, car: str | os.PathLike[str]) -> list[str]:
        """Import every block of the CAR (each hash-checked), then check that every root's DAG is complete."""
        from codexfield.car import CarError, CarReader, check_complete

        try:
            with CarReader(car) as reader:
                for cid, data in reader.blocks():
                    self.put_block(cid, data)
                check_complete(reader)
                roots = [str(r) for r in reader.roots]
        except CarError as exc:
            raise IntegrityError(str(exc)) from None
        return roots

    def get_car(self, root: str, out: str | os.PathLike[str]) -> Path:
        """Write the complete DAG under `root` to the CAR `out`; every block is hash-checked."""
        from codexfield.car import write_dag_car

        try:
            return write_dag_car(self.get_block, [_block_cid(root)], out)
        except UnixFSError as exc:
            raise IntegrityError(str(exc)) from None


def _verified_car_copy(tmp: Path, root, out, where: str) -> Path:
    """Check a downloaded CAR (`tmp`): it must hold the complete DAG under `root`, every block
    matching its CID; write that DAG (and only it) to `out`."""
    from codexfield.car import CarError, CarReader, write_dag_car

    try:
        with CarReader(tmp) as reader:
            if reader.roots[:1] != [root]:
                raise IntegrityError(
                    f"{where} answered a CAR rooted at {[str(r) for r in reader.roots]}, asked for {root}"
                )
            return write_dag_car(reader.get, [root], out)
    except CarError as exc:
        raise IntegrityError(f"{where}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _normalise(cid: str) -> tuple[str, bytes]:
    """(canonical CID string, digest); accepts `ipfs://` and upper case."""
    text = cid.strip().removeprefix("ipfs://")
    try:
        digest = digest_from_cid(text.lower())
    except CIDError as exc:
        raise StoreError(f"{exc}; stores address manifests by CIDv1 raw/sha2-256 (bafkrei...)") from None
    return cid_from_digest(digest), digest


def _checked(cid: str, digest: bytes, data: bytes, where: str) -> bytes:
    actual = hashlib.sha256(data).digest()
    if actual != digest:
        raise IntegrityError(
            f"{where} returned {len(data)} bytes for {cid} that hash to {cid_from_digest(actual)}; "
            "the copy is corrupt or was tampered with: delete it and put the original again"
        )
    return data


def default_store_path() -> Path:
    """`$CODEXFIELD_STORE` when it is a plain path, else `~/.codexfield/store`."""
    env = os.environ.get(ENV_STORE, "")
    if env and "://" not in env:
        return Path(env).expanduser()
    return DEFAULT_STORE.expanduser()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same directory, fsync and rename."""
    _atomic_write_stream(path, data, None)


def _atomic_write_stream(path: Path, head: bytes, body) -> None:
    """Write `head` then everything `body.read()` yields to `path`, atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(head)
            while body is not None and (block := body.read(1 << 20)):
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalStore(_Dags):
    """A content-addressed directory: `<root>/<shard>/<cid>`.

    The shard is the next-to-last two characters of the CID, as in kubo's flatfs
    (`next-to-last/2`): the leading characters of every raw/sha2-256 CID are the same
    (`bafkrei`), the trailing ones are spread evenly. Writes are atomic (temp file + rename) and
    idempotent; reads re-hash the bytes.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_path()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, cid: str) -> Path:
        """Where the object `cid` lives (whether or not it exists)."""
        text, _ = _normalise(cid)
        return self.root / text[-3:-1] / text

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        target = self.path(cid)
        if not target.exists():
            try:
                _atomic_write(target, data)
            except OSError as exc:
                raise StoreError(
                    f"cannot write to the store at {self.root} ({exc.strerror}); "
                    f"set ${ENV_STORE} to a writable directory"
                ) from exc
        return cid

    def get(self, cid: str) -> bytes:
        text, digest = _normalise(cid)
        target = self.path(text)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{text} is not in the local store at {self.root}") from None
        return _checked(text, digest, data, f"the local store ({target})")

    def has(self, cid: str) -> bool:
        return self.path(cid).is_file()

    def block_path(self, cid) -> Path:
        text = str(_block_cid(cid))
        return self.root / text[-3:-1] / text

    def put_block(self, cid, data: bytes) -> str:
        cid = _block_cid(cid)
        _checked_block(cid, data, "the block given")
        target = self.block_path(cid)
        if not target.exists():
            try:
                _atomic_write(target, data)
            except OSError as exc:
                raise StoreError(f"cannot write to the store at {self.root} ({exc.strerror})") from exc
        return str(cid)

    def get_block(self, cid) -> bytes:
        cid = _block_cid(cid)
        target = self.block_path(cid)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{cid} is not in the local store at {self.root}") from None
        return _checked_block(cid, data, f"the local store ({target})")


class IpfsHttpStore(_Dags):
    """A kubo node's HTTP RPC API (`ipfs daemon`, default `http://127.0.0.1:5001`).

    `put` uses `/api/v0/add?cid-version=1&raw-leaves=true` with a 1 MiB chunker, so that a
    manifest up to 1 MiB is one raw block whose CID is exactly the CID derived on chain; kubo's
    answer is checked against the locally computed CID. `get` uses `/api/v0/cat` and re-hashes.
    `has` asks `/api/v0/block/stat` offline (local blocks only, never a network search).
    """

    def __init__(self, api: str = "http://127.0.0.1:5001", timeout: float = 30.0, pin: bool = True) -> None:
        api = api.removeprefix("kubo+").rstrip("/")
        self.api = api.removesuffix("/api/v0")
        self.timeout = timeout
        self.pin = pin

    def __repr__(self) -> str:
        return f"IpfsHttpStore({self.api!r})"

    def _post(self, command: str, params: dict[str, str], **kwargs):
        import requests

        url = f"{self.api}/api/v0/{command}"
        try:
            return requests.post(url, params=params, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise StoreError(
                f"cannot reach the IPFS API at {self.api} ({exc.__class__.__name__}); "
                "is 'ipfs daemon' running, and is the API address right?"
            ) from exc

    @staticmethod
    def _error(response) -> str:
        try:
            return str(response.json().get("Message", response.text))
        except ValueError:
            return response.text.strip()[:200]

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        if len(data) > IPFS_MAX_RAW_BLOCK:
            raise StoreError(
                f"the object is {len(data)} bytes; IPFS addresses it by its raw CID only up to "
                f"{IPFS_MAX_RAW_BLOCK} bytes (one block). Keep it in a LocalStore or file/https URL store"
            )
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "hash": "sha2-256",
            "chunker": f"size-{IPFS_MAX_RAW_BLOCK}",
            "pin": "true" if self.pin else "false",
            "quieter": "true",
        }
        response = self._post("add", params, files={"file": ("manifest.json", data, "application/octet-stream")})
        if response.status_code != 200:
            raise StoreError(f"IPFS add failed at {self.api}: HTTP {response.status_code}: {self._error(response)}")
        lines = [line for line in response.text.splitlines() if line.strip()]
        try:
            answered = json.loads(lines[-1])["Hash"]
        except (IndexError, KeyError, ValueError):
            raise StoreError(
                f"IPFS add at {self.api} answered something that is not kubo's JSON: {response.text[:200]!r}"
            ) from None
        if answered != cid:
            raise IntegrityError(
                f"the IPFS node stored the object as {answered}, expected {cid}; "
                "it ignored cid-version=1/raw-leaves (is it a kubo-compatible API?)"
            )
        return cid

    def get(self, cid: str) -> bytes:
        text, digest = _normalise(cid)
        response = self._post("cat", {"arg": text})
        if response.status_code != 200:
            message = self._error(response)
            if "not found" in message.lower() or response.status_code == 404:
                raise NotFound(f"{text} is not available from the IPFS node at {self.api}: {message}")
            raise StoreError(f"IPFS cat {text} failed at {self.api}: HTTP {response.status_code}: {message}")
        return _checked(text, digest, response.content, f"the IPFS node at {self.api}")

    def has(self, cid: str) -> bool:
        text, _ = _normalise(cid)
        response = self._post("block/stat", {"arg": text, "offline": "true"})
        if response.status_code == 200:
            return True
        message = self._error(response).lower()
        if "not found" in message or "offline" in message:
            return False
        raise StoreError(f"IPFS block/stat {text} failed at {self.api}: HTTP {response.status_code}: {message}")

    def get_block(self, cid) -> bytes:
        cid = _block_cid(cid)
        response = self._post("block/get", {"arg": str(cid)})
        if response.status_code != 200:
            message = self._error(response)
            if "not found" in message.lower():
                raise NotFound(f"{cid} is not available from the IPFS node at {self.api}: {message}")
            raise StoreError(f"IPFS block/get {cid} failed at {self.api}: HTTP {response.status_code}: {message}")
        return _checked_block(cid, response.content, f"the IPFS node at {self.api}")

    def put_block(self, cid, data: bytes) -> str:
        raise StoreError("put whole DAGs into kubo with put_car (dag import), not block by block")

    def put_car(self, car: str | os.PathLike[str]) -> list[str]:
        """`ipfs dag import --pin-roots` over the RPC API, the CAR streamed (flat memory); the CAR is
        checked locally first (complete, every block matching its CID) and kubo must report its roots."""
        from codexfield.car import CarError, CarReader, check_complete

        try:
            with CarReader(car) as reader:
                check_complete(reader)
                roots = [str(r) for r in reader.roots]
        except CarError as exc:
            raise IntegrityError(str(exc)) from None
        boundary = "codexfield" + os.urandom(8).hex()

        def body():
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="capsule.car"\r\n'
                "Content-Type: application/vnd.ipld.car\r\n\r\n"
            ).encode()
            with open(car, "rb") as fh:
                while block := fh.read(1 << 20):
                    yield block
            yield f"\r\n--{boundary}--\r\n".encode()

        params = {"pin-roots": "true" if self.pin else "false"}
        response = self._post(
            "dag/import", params, data=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        if response.status_code != 200:
            raise StoreError(
                f"IPFS dag import failed at {self.api}: HTTP {response.status_code}: {self._error(response)}"
            )
        reported = {}
        for line in response.text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and isinstance(item.get("Root"), dict):
                reported[item["Root"].get("Cid", {}).get("/")] = item["Root"].get("PinErrorMsg", "")
        for root in roots:
            if self.pin and root not in reported:
                raise StoreError(f"the IPFS node at {self.api} did not report pinning {root} after dag import")
            if reported.get(root):
                raise StoreError(f"the IPFS node at {self.api} could not pin {root}: {reported[root]}")
        return roots

    def get_car(self, root: str, out: str | os.PathLike[str]) -> Path:
        """`ipfs dag export ROOT` over the RPC API, checked: complete DAG, every block matching its CID."""
        cid = _block_cid(root)
        response = self._post("dag/export", {"arg": str(cid)}, stream=True)
        if response.status_code != 200:
            message = self._error(response)
            if "not found" in message.lower():
                raise NotFound(f"{cid} is not available from the IPFS node at {self.api}: {message}")
            raise StoreError(f"IPFS dag export {cid} failed at {self.api}: HTTP {response.status_code}: {message}")
        return _verified_car_copy(_download(response, out), cid, out, f"the IPFS node at {self.api}")


class UrlStore(_Dags):
    """Objects at `<base><cid>`: a `file://` directory (read-write) or an `http(s)://` prefix
    such as an IPFS gateway's `https://ipfs.io/ipfs/` (read-only). Every read is hash-checked."""

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        if not base.endswith("/"):
            base += "/"
        self.base = base
        self.scheme = urlparse(base).scheme
        if self.scheme not in ("file", "http", "https"):
            raise StoreError(f"unsupported URL scheme {self.scheme!r} in {base!r}; use file://, http:// or https://")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"UrlStore({self.base!r})"

    def _dir(self) -> Path:
        parsed = urlparse(self.base)
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"{self.base} names a remote host; file:// URLs must be local (file:///path/)")
        return Path(unquote(parsed.path))

    def url(self, cid: str) -> str:
        text, _ = _normalise(cid)
        return self.base + text

    def put(self, data: bytes) -> str:
        if self.scheme != "file":
            raise StoreError(f"{self.base} is read-only (http/https); put objects in a local or IPFS store instead")
        cid = cid_of(data)
        target = self._dir() / cid
        if not target.exists():
            try:
                _atomic_write(target, data)
            except OSError as exc:
                raise StoreError(f"cannot write {target} ({exc.strerror})") from exc
        return cid

    def get(self, cid: str) -> bytes:
        text, digest = _normalise(cid)
        return _checked(text, digest, fetch_bytes(self.base + text, timeout=self.timeout), self.base)

    def has(self, cid: str) -> bool:
        text, _ = _normalise(cid)
        if self.scheme == "file":
            return (self._dir() / text).is_file()
        import requests

        try:
            response = requests.head(self.base + text, timeout=self.timeout, allow_redirects=True)
        except requests.RequestException as exc:
            raise StoreError(f"cannot reach {self.base} ({exc.__class__.__name__})") from exc
        return response.status_code == 200

    def put_block(self, cid, data: bytes) -> str:
        if self.scheme != "file":
            raise StoreError(f"{self.base} is read-only (http/https); put DAGs in a local or IPFS store instead")
        cid = _block_cid(cid)
        _checked_block(cid, data, "the block given")
        target = self._dir() / str(cid)
        if not target.exists():
            try:
                _atomic_write(target, data)
            except OSError as exc:
                raise StoreError(f"cannot write {target} ({exc.strerror})") from exc
        return str(cid)

    def get_block(self, cid) -> bytes:
        cid = _block_cid(cid)
        suffix = "" if self.scheme == "file" else "?format=raw"
        return _checked_block(cid, fetch_bytes(self.base + str(cid) + suffix, timeout=self.timeout), self.base)

    def get_car(self, root: str, out: str | os.PathLike[str]) -> Path:
        """file://: walk the DAG block by block; http(s): one trustless-gateway request
        (`GET <base><cid>?format=car`), then every block checked and the DAG required complete."""
        if self.scheme == "file":
            return super().get_car(root, out)
        import requests

        cid = _block_cid(root)
        url = f"{self.base}{cid}?format=car"
        try:
            response = requests.get(
                url, timeout=self.timeout, stream=True, headers={"Accept": "application/vnd.ipld.car; version=1"}
            )
        except requests.RequestException as exc:
            raise StoreError(f"cannot fetch {url} ({exc.__class__.__name__}: {exc})") from exc
        if response.status_code == 404:
            raise NotFound(f"{url}: HTTP 404")
        if response.status_code != 200:
            raise StoreError(f"fetching {url} failed: HTTP {response.status_code}")
        return _verified_car_copy(_download(response, out), cid, out, url)


def _download(response, out) -> Path:
    """Stream an HTTP response body to a temporary file beside `out`."""
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".download-", suffix=".car")
    with os.fdopen(fd, "wb") as fh:
        for block in response.iter_content(1 << 20):
            fh.write(block)
    return Path(tmp)


def fetch_bytes(uri: str, timeout: float = 30.0) -> bytes:
    """The bytes at a `file://`, `http://` or `https://` URI (no hash check: see `fetch`)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"{uri} names a remote host; file:// URLs must be local (file:///path)")
        path = Path(unquote(parsed.path))
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{uri}: no such file") from None
        except OSError as exc:
            raise StoreError(f"cannot read {uri} ({exc.strerror})") from exc
    if parsed.scheme in ("http", "https"):
        import requests

        try:
            response = requests.get(uri, timeout=timeout)
        except requests.RequestException as exc:
            raise StoreError(f"cannot fetch {uri} ({exc.__class__.__name__}: {exc})") from exc
        if response.status_code == 404:
            raise NotFound(f"{uri}: HTTP 404")
        if response.status_code != 200:
            raise StoreError(f"fetching {uri} failed: HTTP {response.status_code}")
        return response.content
    raise StoreError(f"unsupported URI {uri!r}; use file://, http:// or https://")


def fetch(uri: str, cid: str, timeout: float = 30.0) -> bytes:
    """The bytes at `uri`, checked against `cid` (raises `IntegrityError` if they differ)."""
    text, digest = _normalise(cid)
    return _checked(text, digest, fetch_bytes(uri, timeout=timeout), uri)


def open_store(spec: str | os.PathLike[str] | None = None) -> Store:
    """The store named by `spec` (see the module docstring); `None` reads `$CODEXFIELD_STORE`."""
    if spec is None:
        spec = os.environ.get(ENV_STORE) or None
    if spec is None:
        return LocalStore()
    if isinstance(spec, os.PathLike):
        return LocalStore(spec)
    text = str(spec).strip()
    if text.startswith(("kubo+http://", "kubo+https://")):
        return IpfsHttpStore(text)
    if text.startswith(("http://", "https://")) and text.rstrip("/").endswith("/api/v0"):
        return IpfsHttpStore(text)
    if text.startswith(("file://", "http://", "https://")):
        return UrlStore(text)
    if "://" in text:
        raise StoreError(
            f"unknown store {text!r}: use a directory path, file:///dir/, https://gateway/ipfs/, "
            "or kubo+http://127.0.0.1:5001 for an IPFS node"
        )
    return LocalStore(text)
