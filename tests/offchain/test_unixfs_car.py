"""UnixFS CIDs and capsule CARs against independent implementations.

References: npm `ipfs-unixfs-importer` configured like kubo's `ipfs add --cid-version=1` (raw
leaves, 262144-byte chunks, balanced layout with 174 links) and `@ipld/car`, run by
`tests/offchain/js/unixfs_ref.mjs`; npm `ipfs-car` (unpack our CARs); PyPI `multiformats`
(CID parsing and the sha2-256 multihash of raw leaves).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner
from multiformats import CID, multihash

from codexfield import car as carmod
from codexfield import unixfs
from codexfield.cli.manifest import pack_command, verify_command
from codexfield.manifest import MANIFEST_FILE, pack, pack_car, verify, write_manifest

REPO = Path(__file__).resolve().parents[2]
REF = REPO / "tests/offchain/js/unixfs_ref.mjs"
IPFS_CAR = REPO / "node_modules/ipfs-car/bin.js"
CHUNK = 262_144
TWO_LEVELS = 174 * CHUNK + 1  # one more chunk than a single node can link: the DAG gets a second level


def node_json(*args: str) -> dict:
    out = subprocess.run(["node", str(REF), *args], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def write_random(path: Path, n: int, seed: int) -> Path:
    """A file of n pseudo-random bytes, written in 1 MiB slices (no n-byte buffer)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = n
        while left:
            step = min(left, 1 << 20)
            fh.write(rng.randbytes(step))
            left -= step
    return path


SIZES = {
    "empty.bin": 0,
    "one.bin": 1,
    "chunk.bin": CHUNK,
    "chunk-plus-one.bin": CHUNK + 1,
    "data/several-mb.bin": 5 * (1 << 20) + 12345,
}


@pytest.fixture(scope="module")
def capsule_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unixfs") / "cap"
    for i, (name, size) in enumerate(SIZES.items()):
        write_random(root / name, size, seed=i)
    (root / "données/été/naïve – ☕.txt").parent.mkdir(parents=True)
    (root / "données/été/naïve – ☕.txt").write_text("non-ASCII names are UTF-8 in dag-pb links\n")
    (root / "données/日本語.csv").write_text("a,b\n1,2\n")
    (root / "deep/a/b/c/.hidden").parent.mkdir(parents=True)
    (root / "deep/a/b/c/.hidden").write_bytes(b"hidden files are part of the capsule")
    (root / "capsule.toml").write_text('name = "UnixFS test"\nkind = "dataset"\n')
    return root


@pytest.fixture(scope="module")
def packed(capsule_dir, tmp_path_factory):
    """The capsule packed with a CAR, its manifest written beside the files, and the reference
    importer's view of that same directory (files + capsule.manifest.json)."""
    car = tmp_path_factory.mktemp("car") / "capsule.car"
    result = pack_car(capsule_dir, car, progress=False)
    write_manifest(result, capsule_dir / MANIFEST_FILE)
    ref = node_json("import", str(capsule_dir))
    return result, car, ref


# ------------------------------------------------------------------------------ per-file CIDs


def test_file_cids__every_size__equal_ipfs_unixfs_importer(packed):
    result, _, ref = packed
    ours = {f["path"]: f["cid"] for f in result.files}
    assert ours == {p: c for p, c in ref["files"].items() if p != MANIFEST_FILE}
    assert set(SIZES) <= set(ours)


def test_file_cids__one_chunk_or_less__raw_leaf_whose_multihash_is_the_sha256(packed, capsule_dir):
    result, _, _ = packed
    for f in result.files:
        cid = CID.decode(f["cid"])  # PyPI multiformats parses what we wrote
        assert cid.version == 1 and cid.hashfun.name == "sha2-256" and str(cid) == f["cid"]
        data = (capsule_dir / f["path"]).read_bytes()
        if len(data) <= CHUNK:
            assert cid.codec.name == "raw"
            assert cid.digest == multihash.digest(data, "sha2-256")
        else:
            assert cid.codec.name == "dag-pb" and f["cid"].startswith("bafybei")
    empty = next(f for f in result.files if f["path"] == "empty.bin")
    assert empty["cid"] == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_root_cid__directory_with_manifest__equals_importer_root(packed):
    result, _, ref = packed
    assert result.root_cid == ref["root"]
    assert ref["files"][MANIFEST_FILE] == result.cid  # the manifest file is the on-chain raw CID


def test_file_cid__two_level_dag__equals_importer_and_memory_stays_flat(tmp_path):
    big = write_random(tmp_path / "two-levels" / "big.bin", TWO_LEVELS, seed=99)
    blocks: list[str] = []
    tracemalloc.start()
    try:
        with open(big, "rb") as fh:
            node = unixfs.file_cid(fh, emit=lambda cid, data: blocks.append(cid))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # flat: one 1 MiB read slice, one 256 KiB chunk, at most 174 pending links per level
    assert peak < 4 << 20, f"peak {peak} bytes while hashing a {TWO_LEVELS}-byte file"
    blocks = [str(unixfs.parse_cid(b)) for b in blocks]
    ref = node_json("import", str(big.parent))
    assert str(node.cid) == ref["files"]["big.bin"]
    # 175 leaves + 2 level-1 nodes (174 + 1 links) + the root
    assert len(blocks) == 175 + 2 + 1 and sorted(blocks) == sorted(b for b in ref["blocks"] if b != ref["root"])
    links, data = unixfs.decode_pbnode(next(d for c, d in _blocks(big) if str(c) == str(node.cid)))
    assert len(links) == 2 and unixfs.decode_unixfs(data).filesize == TWO_LEVELS


def _blocks(path: Path):
    out = []
    with open(path, "rb") as fh:
        unixfs.file_cid(
            fh, emit=lambda cid, data: out.append((unixfs.parse_cid(cid), data)) if cid[1] == 0x70 else None
        )
    return out


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7])
def test_file_builder__any_write_slicing__same_cid(size):
    data = random_bytes(size, seed=size)
    whole = unixfs.bytes_cid(data)
    builder = unixfs.FileBuilder()
    rng = random.Random(1)
    pos = 0
    while pos < size:
        step = rng.randint(1, 100_000)
        builder.write(data[pos : pos + step])
        pos += step
    assert builder.finish() == whole
    assert b"".join(unixfs.cat(_memory(data), whole.cid)) == data


def _memory(data: bytes):
    store: dict[bytes, bytes] = {}
    unixfs.bytes_cid(data, emit=lambda cid, block: store.__setitem__(bytes(cid), block))
    return lambda cid: store[bytes(cid)]


def test_directory__too_many_entries_for_a_plain_directory__refused_with_hint():
    leaf = unixfs.bytes_cid(b"x")
    entries = {f"file-{i:06d}.txt": leaf for i in range(6000)}
    with pytest.raises(unixfs.UnixFSError, match="HAMT shard.*split it into subdirectories"):
        unixfs.directory_node(entries)


# ------------------------------------------------------------------------------ CARs


def test_car__same_roots_and_block_set_as_ipld_car_reference(packed, capsule_dir, tmp_path):
    result, car, ref = packed
    ours = node_json("read", str(car))  # @ipld/car reads our CAR and re-hashes every block
    assert ours["roots"] == [result.root_cid] and ours["bad"] == []
    assert ours["blocks"] == ref["blocks"]
    theirs_car = tmp_path / "ref.car"
    node_json("import", str(capsule_dir), str(theirs_car))
    with carmod.CarReader(theirs_car) as theirs:  # and we read theirs
        assert [str(r) for r in theirs.roots] == [result.root_cid]
        assert sorted(str(c) for c, _ in theirs.blocks()) == ref["blocks"]
    assert verify(theirs_car, result.content_hash, progress=False).ok


def test_car__ipfs_car_unpacks_every_file_byte_for_byte(packed, capsule_dir, tmp_path):
    result, car, _ = packed
    roots = subprocess.run(["node", str(IPFS_CAR), "roots", str(car)], capture_output=True, text=True, timeout=120)
    assert roots.returncode == 0 and roots.stdout.split() == [result.root_cid]
    out = tmp_path / "unpacked"
    run = subprocess.run(
        ["node", str(IPFS_CAR), "unpack", str(car), "--output", str(out)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    for f in result.files:
        assert hashlib.sha256((out / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert (out / MANIFEST_FILE).read_bytes() == result.canonical


def test_verify__car__ok_then_each_kind_of_damage_reported(packed, tmp_path):
    result, car, _ = packed
    report = verify(car, result.content_hash, progress=False)
    assert report.ok, report.describe()
    assert report.source == f"{MANIFEST_FILE} in the CAR" and report.describe().startswith("OK: the CAR matches")

    # a flipped byte in a leaf block: the block no longer matches its CID
    bad = tmp_path / "flipped.car"
    data = bytearray(car.read_bytes())
    with carmod.CarReader(car) as reader:
        one = next(c for c in reader.order if str(c) == next(f["cid"] for f in result.files if f["path"] == "one.bin"))
        offset = reader._index[bytes(one)][0]
    data[offset] ^= 0xFF
    bad.write_bytes(bytes(data))
    report = verify(bad, result.content_hash, progress=False)
    assert not report.ok and any("one.bin" in p and "does not hash to that CID" in p for p in report.problems)

    # a CAR without one leaf of the big file: incomplete
    partial = tmp_path / "partial.car"
    big = next(f for f in result.files if f["path"] == "data/several-mb.bin")
    with carmod.CarReader(car) as reader:
        leaf = unixfs.decode_pbnode(reader.get(big["cid"]))[0][3].cid
        writer = carmod.CarWriter(partial)
        for cid, block in reader.blocks():
            if bytes(cid) != leaf:
                writer.add(cid, block)
        writer.close(reader.roots)
    report = verify(partial, result.content_hash, progress=False)
    assert not report.ok and any("lacks the block" in p for p in report.problems)

    # another capsule's hash
    report = verify(car, hashlib.sha256(b"other").digest(), progress=False)
    assert not report.ok and not report.manifest_matches


def test_verify__car_of_edited_directory__names_the_changed_file(capsule_dir, packed, tmp_path):
    result, _, _ = packed
    edited = tmp_path / "edited"
    shutil.copytree(capsule_dir, edited)
    (edited / "one.bin").write_bytes(b"Z")
    other = pack_car(edited, tmp_path / "edited.car", progress=False)
    report = verify(other.car, result.content_hash, manifest=result.canonical, progress=False)
    assert not report.ok and [c.path for c in report.changed] == ["one.bin"]


def test_verify__directory__manifest_cid_mismatch_reported(capsule_dir, packed):
    result, _, _ = packed
    manifest = json.loads(result.canonical)
    manifest["files"][0]["cid"] = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    target = next(f for f in result.files if f["path"] == manifest["files"][0]["path"])
    if target["cid"] == manifest["files"][0]["cid"]:
        manifest["files"][0]["cid"] = next(f["cid"] for f in result.files if f["cid"] != target["cid"])
    from codexfield.manifest import content_hash

    report = verify(capsule_dir, content_hash(manifest), manifest=manifest, progress=False)
    assert report.manifest_matches and not report.ok
    assert [c.path for c in report.changed] == [target["path"]] and "cid" in report.changed[0].describe()


def test_cli__pack_car_then_verify_car(capsule_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEXFIELD_STORE", str(tmp_path / "store"))
    car = tmp_path / "cli.car"
    runner = CliRunner()
    out = runner.invoke(
        pack_command,
        [str(capsule_dir), "--car", str(car), "--no-progress", "--json", "--out", str(tmp_path / "m.json")],
    )
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["car"] == str(car) and summary["root_cid"].startswith("bafybei")
    ok = runner.invoke(verify_command, [str(car), "--hash", summary["content_hash"]])
    assert ok.exit_code == 0 and ok.output.startswith("OK: the CAR matches"), ok.output
    junk = tmp_path / "junk.car"
    junk.write_bytes(b"not a car")
    bad = runner.invoke(verify_command, [str(junk), "--hash", summary["content_hash"]])
    assert bad.exit_code == 2 and "neither a directory nor a CAR file" in bad.output


def test_pack__car_inside_the_directory__is_not_listed(tmp_path):
    root = tmp_path / "cap"
    root.mkdir()
    (root / "a.txt").write_text("a")
    first = pack(root, kind="code", car=root / "cap.car", progress=False)
    again = pack(root, kind="code", car=root / "cap.car", progress=False)
    assert [f["path"] for f in again.files] == ["a.txt"] and again.content_hash == first.content_hash
    assert not [p for p in root.iterdir() if p.name.startswith(".car-body-")]


def test_pack__manifest_over_one_chunk__raw_manifest_block_is_a_second_root(tmp_path):
    root = tmp_path / "many"
    for i in range(2200):
        (root / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 4}" / f"file-{i:05d}.txt").write_text(str(i))
    result = pack(root, kind="dataset", car=tmp_path / "many.car", progress=False)
    assert len(result.canonical) > CHUNK
    with carmod.CarReader(result.car) as reader:
        assert [str(r) for r in reader.roots] == [result.root_cid, result.cid]
        assert reader.get(result.cid) == result.canonical
    assert verify(result.car, result.content_hash, progress=False).ok


# ------------------------------------------------------------------------------ the node serves from a CAR


def test_node_model__loads_from_its_car_like_from_its_directory(tmp_path):
    from codexfield.node.model import TextClassifier, train

    model = train(
        ["refund my card", "wifi is down", "reset my password", "parcel late"] * 3,
        ["billing", "technical", "account", "shipping"] * 3,
    )
    directory = model.save(tmp_path / "model")
    result = pack_car(directory, tmp_path / "model.car", progress=False)
    from_car = TextClassifier.load(result.car)
    from_dir = TextClassifier.load(directory)
    assert from_car.vocab == from_dir.vocab and from_car.classes == from_dir.classes
    assert from_car.predict("my wifi is down") == from_dir.predict("my wifi is down")
    assert verify(result.car, result.content_hash, progress=False).ok


@pytest.mark.parametrize("bad", ["QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "bafkrei", "BAFKREI" + "A" * 52])
def test_schema__file_cid_not_a_base32_cidv1__readable_error(bad):
    from codexfield.manifest import ManifestError, validate

    manifest = {
        "schema_version": 1,
        "name": "n",
        "kind": "dataset",
        "files": [{"path": "a", "size": 1, "sha256": "0" * 64, "cid": bad}],
    }
    with pytest.raises(ManifestError, match=r"files\[0\]\.cid: .* is not a base32 CIDv1 with a sha2-256 digest"):
        validate(manifest)
    del manifest["files"][0]["cid"]
    validate(manifest)  # manifests written before per-file CIDs still validate


def test_node_serve__model_file_that_is_not_a_car__one_line_error(tmp_path):
    from codexfield.cli.gateway import serve_command

    junk = tmp_path / "model.bin"
    junk.write_bytes(b"weights?")
    out = CliRunner().invoke(serve_command, ["--capsule", "1", "--model", str(junk), "--account", "TEST::0"])
    assert (
        out.exit_code == 1
        and "neither a capsule directory nor a capsule CAR" in out.output
        and "codexfield pack DIR --car" in out.output
    )
    assert "Traceback" not in out.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_pack__car_in_unwritable_directory__pack_error_with_hint(tmp_path):
    from codexfield.manifest import PackError

    root = tmp_path / "cap"
    root.mkdir()
    (root / "a.txt").write_text("a")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(PackError, match="cannot write the CAR .*writable path"):
        pack(root, kind="code", car=locked / "x.car", progress=False)


def test_cli_pack__car_path_is_a_directory__exits_2(tmp_path):
    root = tmp_path / "cap"
    root.mkdir()
    (root / "a.txt").write_text("a")
    out = CliRunner().invoke(pack_command, [str(root), "--kind", "code", "--no-store", "--car", str(tmp_path)])
    assert out.exit_code == 2 and "Traceback" not in out.output
