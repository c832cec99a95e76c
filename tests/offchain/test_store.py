"""Storage backends: local content-addressed directory, kubo HTTP API, file/http URLs.

kubo itself cannot be installed here; `FakeKubo` is a small HTTP server on 127.0.0.1 that
speaks the three RPC calls the store uses (`add`, `cat`, `block/stat`) with kubo's parameters
and answers, and computes CIDs with py-cid (not with codexfield.cid), so the round trip is a
real HTTP exchange checked by an independent CID implementation.
"""

from __future__ import annotations

import hashlib
import json
import threading
from email import policy
from email.parser import BytesParser
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import cid as pycid
import multihash
import pytest

from codexfield.cid import cid_of
from codexfield.store import (
    IPFS_MAX_RAW_BLOCK,
    IntegrityError,
    IpfsHttpStore,
    LocalStore,
    NotFound,
    StoreError,
    UrlStore,
    fetch,
    open_store,
)


def reference_cid(data: bytes, raw_leaves: bool) -> str:
    mh = multihash.Multihash(multihash.Func.sha2_256, hashlib.sha256(data).digest()).encode()
    if raw_leaves:
        return pycid.make_cid(1, "raw", mh).encode("base32").decode()
    # Without raw leaves kubo wraps the bytes in a UnixFS dag-pb node: a different CID.
    return pycid.make_cid(1, "dag-pb", mh).encode("base32").decode()


def car_roots(car: bytes) -> list[str]:
    """The roots of a CARv1, read with PyPI dag-cbor/multiformats (not codexfield.car)."""
    import dag_cbor
    from multiformats import varint

    length, used, _ = varint.decode_raw(car)
    return [str(c.set(base="base32")) for c in dag_cbor.decode(car[used : used + length])["roots"]]


def tampered(car: bytes) -> bytes:
    """The CAR with its last byte flipped (inside the last block's data)."""
    return car[:-1] + bytes([car[-1] ^ 0xFF])


class FakeKubo(BaseHTTPRequestHandler):
    blocks: dict[str, bytes]
    cars: dict[str, bytes]
    calls: list[tuple[str, dict[str, list[str]]]]
    tamper: bool = False

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self, cid: str) -> None:
        self._json(
            500,
            {
                "Message": f"block was not found locally (offline): ipld: could not find {cid}",
                "Code": 0,
                "Type": "error",
            },
        )

    def do_GET(self):  # kubo's RPC API answers GET with 405
        self._json(405, {"Message": "405 - Method Not Allowed", "Code": 0, "Type": "error"})

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    def _multipart_file(self, body: bytes) -> bytes:
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        return next(p.get_content() for p in message.iter_parts())

    def do_POST(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        self.calls.append((url.path, query))
        body = self._body()
        if url.path == "/api/v0/dag/import":
            car = self._multipart_file(body)
            roots = car_roots(car)
            for root in roots:
                self.cars[root] = car
            lines = [json.dumps({"Root": {"Cid": {"/": r}, "PinErrorMsg": ""}}) for r in roots]
            data = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif url.path == "/api/v0/dag/export":
            key = query["arg"][0]
            if key not in self.cars:
                return self._not_found(key)
            data = tampered(self.cars[key]) if self.tamper else self.cars[key]
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.ipld.car")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif url.path == "/api/v0/add":
            message = BytesParser(policy=policy.HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
            )
            data = next(p.get_content() for p in message.iter_parts())
            raw = query.get("raw-leaves") == ["true"] and query.get("cid-version") == ["1"]
            key = reference_cid(data, raw)
            self.blocks[key] = data
            self._json(200, {"Name": "manifest.json", "Hash": key, "Size": str(len(data))})
        elif url.path == "/api/v0/cat":
            key = query["arg"][0]
            if key not in self.blocks:
                return self._not_found(key)
            data = self.blocks[key] + (b" " if self.tamper else b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif url.path == "/api/v0/block/stat":
            key = query["arg"][0]
            if key not in self.blocks:
                return self._not_found(key)
            self._json(200, {"Key": key, "Size": len(self.blocks[key])})
        else:
            self._json(404, {"Message": f"unknown command {url.path}", "Code": 0, "Type": "error"})


def serve(handler) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def kubo():
    handler = type("Kubo", (FakeKubo,), {"blocks": {}, "cars": {}, "calls": [], "tamper": False})
    server, url = serve(handler)
    yield handler, url
    server.shutdown()
    server.server_close()


@pytest.fixture
def static_site(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server, url = serve(partial(Quiet, directory=str(root)))
    yield root, url
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------- LocalStore


def test_local_store__put_then_get__returns_bytes_under_their_cid(tmp_path):
    store = LocalStore(tmp_path / "s")
    data = b'{"name":"x"}'
    cid = store.put(data)
    assert cid == cid_of(data) == reference_cid(data, raw_leaves=True)
    assert store.has(cid) and store.has("ipfs://" + cid)
    assert store.get(cid) == data
    # sharded like kubo's flatfs: next-to-last two characters
    assert store.path(cid) == tmp_path / "s" / cid[-3:-1] / cid
    assert store.path(cid).read_bytes() == data


def test_local_store__put_twice__is_idempotent_and_leaves_no_temp_files(tmp_path):
    store = LocalStore(tmp_path)
    assert store.put(b"a") == store.put(b"a")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [cid_of(b"a")]


def test_local_store__unknown_cid__has_false_and_get_raises_not_found(tmp_path):
    store = LocalStore(tmp_path)
    cid = cid_of(b"never stored")
    assert not store.has(cid)
    with pytest.raises(NotFound, match="not in the local store"):
        store.get(cid)


def test_local_store__corrupted_object__get_raises_integrity_error(tmp_path):
    store = LocalStore(tmp_path)
    cid = store.put(b"original")
    store.path(cid).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="corrupt or was tampered"):
        store.get(cid)


def test_local_store__not_a_raw_cid__raises_readable_error(tmp_path):
    with pytest.raises(StoreError, match="bafkrei"):
        LocalStore(tmp_path).get("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")


def test_local_store__default_root__follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEXFIELD_STORE", str(tmp_path / "env-store"))
    assert LocalStore().root == tmp_path / "env-store"
    monkeypatch.delenv("CODEXFIELD_STORE")
    assert str(LocalStore().root).endswith(".codexfield/store")


# ---------------------------------------------------------------------------------- IpfsHttpStore


def test_ipfs_store__put_get_has__round_trip_over_http(kubo):
    handler, url = kubo
    store = IpfsHttpStore(url)
    data = json.dumps({"name": "capsule", "files": []}).encode()
    cid = store.put(data)
    assert cid == cid_of(data)
    add_path, add_query = handler.calls[0]
    assert add_path == "/api/v0/add"
    assert add_query["cid-version"] == ["1"] and add_query["raw-leaves"] == ["true"]
    assert store.has(cid)
    assert store.get(cid) == data


def test_ipfs_store__node_ignores_raw_leaves__put_raises_integrity_error(kubo, monkeypatch):
    handler, url = kubo
    store = IpfsHttpStore(url)
    original = store._post

    def without_raw_leaves(command, params, **kw):
        return original(command, {k: v for k, v in params.items() if k != "raw-leaves"}, **kw)

    monkeypatch.setattr(store, "_post", without_raw_leaves)
    with pytest.raises(IntegrityError, match="ignored cid-version=1/raw-leaves"):
        store.put(b"data")


def test_ipfs_store__missing_block__has_false_get_not_found(kubo):
    _, url = kubo
    store = IpfsHttpStore("kubo+" + url)
    cid = cid_of(b"absent")
    assert not store.has(cid)
    with pytest.raises(NotFound, match="not available from the IPFS node"):
        store.get(cid)


def test_ipfs_store__node_returns_other_bytes__get_raises_integrity_error(kubo):
    handler, url = kubo
    store = IpfsHttpStore(url)
    cid = store.put(b"manifest")
    handler.tamper = True
    with pytest.raises(IntegrityError):
        store.get(cid)


def test_ipfs_store__larger_than_one_block__put_refuses():
    with pytest.raises(StoreError, match="one block"):
        IpfsHttpStore("http://127.0.0.1:9").put(b"x" * (IPFS_MAX_RAW_BLOCK + 1))


def test_ipfs_store__no_daemon__raises_actionable_error():
    # port 9 (discard) on loopback: nothing listens there in the test environment
    with pytest.raises(StoreError, match="is 'ipfs daemon' running"):
        IpfsHttpStore("http://127.0.0.1:9", timeout=2).get(cid_of(b"x"))


# ---------------------------------------------------------------------------------- UrlStore


def test_url_store__file_url__put_get_has(tmp_path):
    store = UrlStore((tmp_path / "objects").as_uri())
    cid = store.put(b"hello")
    assert (tmp_path / "objects" / cid).read_bytes() == b"hello"
    assert store.has(cid) and store.get(cid) == b"hello"


def test_url_store__http_gateway__get_verifies_and_put_is_read_only(static_site):
    root, url = static_site
    data = b'{"k":1}'
    cid = cid_of(data)
    (root / cid).write_bytes(data)
    store = UrlStore(url + "/")
    assert store.has(cid)
    assert store.get(cid) == data
    assert not store.has(cid_of(b"other"))
    with pytest.raises(NotFound):
        store.get(cid_of(b"other"))
    with pytest.raises(StoreError, match="read-only"):
        store.put(b"new")
    (root / cid).write_bytes(b'{"k":2}')
    with pytest.raises(IntegrityError):
        store.get(cid)


def test_fetch__uri_with_expected_cid__checks_bytes(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_bytes(b"abc")
    assert fetch(path.as_uri(), cid_of(b"abc")) == b"abc"
    with pytest.raises(IntegrityError):
        fetch(path.as_uri(), cid_of(b"abd"))


# ---------------------------------------------------------------------------------- open_store


def test_open_store__specs__choose_backend(tmp_path, monkeypatch):
    monkeypatch.delenv("CODEXFIELD_STORE", raising=False)
    assert isinstance(open_store(), LocalStore)
    assert open_store(str(tmp_path)).root == tmp_path
    assert isinstance(open_store(tmp_path), LocalStore)
    assert isinstance(open_store("kubo+http://127.0.0.1:5001"), IpfsHttpStore)
    ipfs = open_store("http://127.0.0.1:5001/api/v0")
    assert isinstance(ipfs, IpfsHttpStore) and ipfs.api == "http://127.0.0.1:5001"
    assert isinstance(open_store("https://ipfs.io/ipfs/"), UrlStore)
    assert isinstance(open_store(tmp_path.as_uri()), UrlStore)
    monkeypatch.setenv("CODEXFIELD_STORE", "kubo+http://127.0.0.1:5001")
    assert isinstance(open_store(), IpfsHttpStore)
    with pytest.raises(StoreError, match="unknown store"):
        open_store("s3://bucket")


# ---------------------------------------------------------------------------------- whole DAGs (CARs)


@pytest.fixture
def capsule_car(tmp_path):
    from codexfield.manifest import pack_car

    root = tmp_path / "cap"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "big.bin").write_bytes(bytes(range(256)) * 3000)  # 768000 B: a 3-leaf DAG
    (root / "small.txt").write_text("small")
    return pack_car(root, tmp_path / "cap.car", kind="dataset", progress=False)


def _block_set(path) -> list[str]:
    from codexfield.car import CarReader

    with CarReader(path) as reader:
        return sorted(str(c) for c, _ in reader.blocks())


def test_local_store__put_car_get_car__whole_dag_round_trip(tmp_path, capsule_car):
    store = LocalStore(tmp_path / "s")
    roots = store.put_car(capsule_car.car)
    assert roots == [capsule_car.root_cid]
    assert store.get(capsule_car.cid) == capsule_car.canonical  # the manifest block, by its on-chain CID
    out = store.get_car(capsule_car.root_cid, tmp_path / "copy.car")
    assert _block_set(out) == _block_set(capsule_car.car)
    big = next(f for f in capsule_car.files if f["path"] == "sub/big.bin")
    assert big["cid"].startswith("bafybei") and store.get_block(big["cid"])  # dag-pb blocks by CID too


def test_local_store__corrupted_block__get_car_raises_integrity_error(tmp_path, capsule_car):
    store = LocalStore(tmp_path / "s")
    store.put_car(capsule_car.car)
    small = next(f for f in capsule_car.files if f["path"] == "small.txt")
    store.block_path(small["cid"]).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="corrupt or was tampered"):
        store.get_car(capsule_car.root_cid, tmp_path / "copy.car")
    store.block_path(small["cid"]).unlink()
    with pytest.raises(NotFound):
        store.get_car(capsule_car.root_cid, tmp_path / "copy.car")


def test_url_store__file_url__put_car_get_car(tmp_path, capsule_car):
    store = UrlStore((tmp_path / "objects").as_uri())
    assert store.put_car(capsule_car.car) == [capsule_car.root_cid]
    assert _block_set(store.get_car(capsule_car.root_cid, tmp_path / "copy.car")) == _block_set(capsule_car.car)


def test_ipfs_store__dag_import_and_export__streamed_and_verified(kubo, tmp_path, capsule_car):
    handler, url = kubo
    store = IpfsHttpStore(url)
    assert store.put_car(capsule_car.car) == [capsule_car.root_cid]
    path, query = handler.calls[-1]
    assert path == "/api/v0/dag/import" and query["pin-roots"] == ["true"]
    out = store.get_car(capsule_car.root_cid, tmp_path / "copy.car")
    assert handler.calls[-1][0] == "/api/v0/dag/export"
    assert _block_set(out) == _block_set(capsule_car.car)
    handler.tamper = True
    with pytest.raises(IntegrityError, match="does not hash to that CID"):
        store.get_car(capsule_car.root_cid, tmp_path / "bad.car")
    assert not (tmp_path / "bad.car").exists()
    with pytest.raises(NotFound):
        store.get_car(cid_of(b"absent"), tmp_path / "none.car")


def test_ipfs_store__incomplete_car__put_car_refuses_before_upload(kubo, tmp_path, capsule_car):
    from codexfield.car import CarReader, CarWriter

    handler, url = kubo
    partial = tmp_path / "partial.car"
    with CarReader(capsule_car.car) as reader:
        writer = CarWriter(partial)
        for cid, data in list(reader.blocks())[1:]:
            writer.add(cid, data)
        writer.close(reader.roots)
    with pytest.raises(IntegrityError, match="lacks the block"):
        IpfsHttpStore(url).put_car(partial)
    assert not handler.calls


class FakeGateway(BaseHTTPRequestHandler):
    """A trustless gateway: GET /ipfs/<cid>?format=car|raw."""

    cars: dict[str, bytes]
    blocks: dict[str, bytes]
    tamper = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        cid = url.path.removeprefix("/ipfs/")
        fmt = parse_qs(url.query).get("format", [""])[0]
        data = (self.cars if fmt == "car" else self.blocks).get(cid)
        if data is None:
            self.send_response(404)
            self.end_headers()
            return
        if self.tamper:
            data = tampered(data)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ipld.car" if fmt == "car" else "application/vnd.ipld.raw")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_url_store__gateway__get_car_and_get_block_hash_checked(tmp_path, capsule_car):
    from codexfield.car import CarReader

    with CarReader(capsule_car.car) as reader:
        blocks = {str(c): d for c, d in reader.blocks()}
    handler = type(
        "Gw",
        (FakeGateway,),
        {"cars": {capsule_car.root_cid: capsule_car.car.read_bytes()}, "blocks": blocks, "tamper": False},
    )
    server, url = serve(handler)
    try:
        store = UrlStore(url + "/ipfs/")
        out = store.get_car(capsule_car.root_cid, tmp_path / "copy.car")
        assert _block_set(out) == sorted(blocks)
        assert store.get_block(capsule_car.cid) == capsule_car.canonical
        with pytest.raises(NotFound):
            store.get_car(cid_of(b"absent"), tmp_path / "none.car")
        handler.tamper = True
        with pytest.raises(IntegrityError):
            store.get_car(capsule_car.root_cid, tmp_path / "bad.car")
        with pytest.raises(IntegrityError):
            store.get_block(capsule_car.cid)
        with pytest.raises(StoreError, match="read-only"):
            store.put_car(capsule_car.car)
    finally:
        server.shutdown()
        server.server_close()
