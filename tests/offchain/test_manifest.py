"""Capsule manifests: deterministic packing, JCS canonical form, schema, verify, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import random

import pytest
import rfc8785
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from codexfield import manifest as mf
from codexfield.cid import cid_from_digest
from codexfield.cli.manifest import pack_command, verify_command
from codexfield.constants import Kind
from codexfield.manifest import (
    MANIFEST_FILE,
    ManifestError,
    PackError,
    build,
    canonical,
    load_manifest,
    pack,
    parse_hash,
    validate,
    verify,
)
from codexfield.store import LocalStore

FILES = {"data/train.csv": b"a,b\n1,2\n", "data/test.csv": b"a,b\n3,4\n", "README.md": b"# demo\n", "z": b""}


def make_dir(root, files=FILES, order=None):
    root.mkdir(parents=True, exist_ok=True)
    names = list(files) if order is None else order
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    return root


def minimal(**over):
    m = {"schema_version": 1, "name": "n", "kind": "dataset", "files": [{"path": "a", "size": 1, "sha256": "0" * 64}]}
    m.update(over)
    return m


# ------------------------------------------------------------------------------ pack


def test_pack__directory__lists_every_file_sorted_with_size_and_sha256(tmp_path):
    result = pack(make_dir(tmp_path / "cap"), kind="dataset", progress=False)
    files = result.manifest["files"]
    assert [f["path"] for f in files] == sorted(FILES)
    for f in files:
        assert f["size"] == len(FILES[f["path"]])
        assert f["sha256"] == hashlib.sha256(FILES[f["path"]]).hexdigest()
    assert result.manifest["name"] == "cap" and result.manifest["kind"] == "dataset"
    assert result.manifest["schema_version"] == 1
    assert result.canonical == rfc8785.dumps(result.manifest)
    assert result.content_hash == hashlib.sha256(result.canonical).digest()
    assert result.cid == cid_from_digest(result.content_hash)
    assert result.kind_id == Kind.DATASET and result.file_count == 4
    assert result.total_bytes == sum(map(len, FILES.values()))


def test_pack__files_created_in_other_order__same_hash(tmp_path):
    a = pack(make_dir(tmp_path / "a" / "cap"), kind="model", progress=False)
    order = list(FILES)
    random.Random(7).shuffle(order)
    b = pack(make_dir(tmp_path / "b" / "cap", order=list(reversed(order))), kind="model", progress=False)
    assert a.canonical == b.canonical and a.content_hash == b.content_hash


@given(st.permutations(["schema_version", "name", "kind", "description", "version", "files"]))
def test_canonical__dict_key_order__does_not_change_bytes(keys):
    base = minimal(description="d", version="1.0")
    shuffled = {k: base[k] for k in keys}
    assert canonical(shuffled) == canonical(base)
    assert build(shuffled).content_hash == build(base).content_hash


def test_canonical__is_rfc8785__sorted_keys_no_whitespace_utf8():
    data = canonical(minimal(name="Café ☕", description="a\nb"))
    text = data.decode("utf-8")
    assert " :" not in text and ", " not in text and text.startswith('{"description":"a\\nb","files"')
    assert "Café ☕" in text  # non-ASCII kept as UTF-8, not \u-escaped


def test_load_manifest__pretty_printed_copy__hashes_like_canonical(tmp_path):
    result = pack(make_dir(tmp_path / "cap"), kind="code", progress=False)
    pretty = json.dumps(result.manifest, indent=4, sort_keys=False)
    assert mf.content_hash(load_manifest(pretty)) == result.content_hash


@given(st.data())
def test_pack__one_byte_changed__changes_hash_and_verify_names_the_file(tmp_path_factory, data):
    root = make_dir(tmp_path_factory.mktemp("flip") / "cap")
    before = pack(root, kind="dataset", progress=False)
    name = data.draw(st.sampled_from([n for n in FILES if FILES[n]]))
    content = bytearray(FILES[name])
    i = data.draw(st.integers(0, len(content) - 1))
    content[i] ^= data.draw(st.integers(1, 255))
    (root / name).write_bytes(bytes(content))
    after = pack(root, kind="dataset", progress=False)
    assert after.content_hash != before.content_hash
    report = verify(root, before.content_hash, manifest=before.canonical, progress=False)
    assert not report.ok
    assert [c.path for c in report.changed] == [name]
    assert report.changed[0].expected_size == report.changed[0].actual_size
    assert not report.missing and not report.extra


def test_pack__previous_manifest_in_directory__is_skipped(tmp_path):
    root = make_dir(tmp_path / "cap")
    first = pack(root, kind="dataset", progress=False)
    mf.write_manifest(first, root / MANIFEST_FILE)
    again = pack(root, kind="dataset", progress=False)
    assert again.content_hash == first.content_hash
    assert (root / MANIFEST_FILE).read_bytes() == first.canonical


def test_pack__out_file_inside_directory__is_skipped(tmp_path):
    root = make_dir(tmp_path / "cap")
    first = pack(root, kind="dataset", progress=False)
    (root / "out.json").write_bytes(first.canonical)
    assert pack(root, kind="dataset", skip=[root / "out.json"], progress=False).content_hash == first.content_hash


def test_pack__empty_subdirectory__is_not_recorded(tmp_path):
    root = make_dir(tmp_path / "cap")
    before = pack(root, kind="dataset", progress=False)
    (root / "empty" / "deeper").mkdir(parents=True)
    assert pack(root, kind="dataset", progress=False).content_hash == before.content_hash


def test_pack__empty_directory__raises(tmp_path):
    (tmp_path / "cap" / "sub").mkdir(parents=True)
    with pytest.raises(PackError, match="holds no files"):
        pack(tmp_path / "cap", kind="dataset")


def test_pack__symlinked_file__refused_with_hint(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / "link.csv").symlink_to(root / "data" / "train.csv")
    with pytest.raises(PackError, match=r"link.csv is a symbolic link .*cp -L"):
        pack(root, kind="dataset")


def test_pack__symlinked_directory__refused(tmp_path):
    root = make_dir(tmp_path / "cap")
    (tmp_path / "outside").mkdir()
    (root / "ext").symlink_to(tmp_path / "outside")
    with pytest.raises(PackError, match="ext is a symbolic link"):
        pack(root, kind="dataset")


def test_pack__fifo__refused_as_not_regular(tmp_path):
    root = make_dir(tmp_path / "cap")
    os.mkfifo(root / "pipe")
    with pytest.raises(PackError, match="pipe is not a regular file"):
        pack(root, kind="dataset")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_pack__unreadable_file__raises_with_hint(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / "README.md").chmod(0)
    with pytest.raises(PackError, match=r"cannot read README.md: permission denied.*chmod"):
        pack(root, kind="dataset")


def test_pack__non_utf8_file_name__raises(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / os.fsdecode(b"bad\xff.bin")).write_bytes(b"x")
    with pytest.raises(PackError, match="not valid UTF-8"):
        pack(root, kind="dataset")


def test_pack__backslash_in_name__raises(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / "a\\b").write_bytes(b"x")
    with pytest.raises(PackError, match="backslash"):
        pack(root, kind="dataset")


def test_pack__no_kind__raises_with_hint(tmp_path):
    with pytest.raises(PackError, match="--kind"):
        pack(make_dir(tmp_path / "cap"))


def test_pack__not_a_directory__raises(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(PackError, match="not a directory"):
        pack(tmp_path / "f", kind="dataset")
    with pytest.raises(PackError, match="does not exist"):
        pack(tmp_path / "nope", kind="dataset")


def test_pack__capsule_toml__supplies_metadata_and_arguments_override(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / "capsule.toml").write_text(
        'name = "Iris"\nkind = "dataset"\ndescription = "from toml"\n'
        '[dataset_card]\ntask = "classification"\nsize = { records = 150 }\n'
        '[license]\nspdx = "CC-BY-4.0"\n'
    )
    result = pack(root, description="from args", progress=False)
    m = result.manifest
    assert m["name"] == "Iris" and m["kind"] == "dataset" and m["description"] == "from args"
    assert m["dataset_card"] == {"task": "classification", "size": {"records": 150}}
    assert m["license"] == {"spdx": "CC-BY-4.0"}
    assert "capsule.toml" in [f["path"] for f in m["files"]]


def test_pack__capsule_toml_unknown_key__raises(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / "capsule.toml").write_text('kind = "model"\nlicence = "MIT"\n')
    with pytest.raises(PackError, match="unknown key.*licence"):
        pack(root)


def test_pack__capsule_toml_invalid__raises(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / "capsule.toml").write_text('kind = "model\n')
    with pytest.raises(PackError, match="not valid TOML"):
        pack(root)


def test_pack__extra_fields__cards_creator_parents_and_x_extensions(tmp_path):
    card = {
        "task": "text-classification",
        "language": ["en", "pt"],
        "training_data": [1, "ipfs://bafkreiabc"],
        "metrics": [{"name": "accuracy", "value": 0.93, "dataset": "test"}],
        "intended_use": "research",
        "limitations": "toy",
    }
    result = pack(
        make_dir(tmp_path / "cap"),
        kind=Kind.MODEL,
        version="0.1.0",
        model_card=card,
        creator="did:ethr:0x7a69:0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
        parents=[1, "eip155:31337/erc721:0x5FbDB2315678afecb367f032d93F642f64180aa3/2"],
        x_training_seed=7,
        progress=False,
    )
    assert result.manifest["model_card"] == card
    assert result.manifest["x-training_seed"] == 7
    assert result.kind_id == 2


def test_pack__progress__bar_on_stderr_only_when_asked(tmp_path, capsys):
    root = make_dir(tmp_path / "cap")
    pack(root, kind="dataset", progress=False)
    assert capsys.readouterr().err == ""
    pack(root, kind="dataset", progress=True)
    assert "hashing cap" in capsys.readouterr().err


# ------------------------------------------------------------------------------ schema


def test_schema__kind_enum__mirrors_constants_kind():
    assert mf.schema()["properties"]["kind"]["enum"] == [k.name.lower() for k in Kind]


def test_validate__minimal_manifest__passes():
    validate(minimal())


@pytest.mark.parametrize(
    "manifest, message",
    [
        (minimal(kind="weights"), "kind: 'weights' is not one of dataset, model"),
        (
            minimal(files=[{"path": "../etc/passwd", "size": 1, "sha256": "0" * 64}]),
            "files[0].path: '../etc/passwd' is not a relative POSIX path",
        ),
        (
            minimal(files=[{"path": "/abs", "size": 1, "sha256": "0" * 64}]),
            "files[0].path: '/abs' is not a relative POSIX path",
        ),
        (minimal(files=[{"path": "a/./b", "size": 1, "sha256": "0" * 64}]), "is not a relative POSIX path"),
        (
            minimal(files=[{"path": "a", "size": 1, "sha256": "ABC"}]),
            "files[0].sha256: 'ABC' is not 64 lower-case hex digits",
        ),
        (
            minimal(files=[{"path": "a", "size": -1, "sha256": "0" * 64}]),
            "files[0].size: -1 is less than the minimum of 0",
        ),
        (minimal(files=[]), "files: [] should be non-empty"),
        (minimal(licence="MIT"), "(manifest): unknown key(s) 'licence'; allowed: created_at, creator"),
        (minimal(schema_version=2), "schema_version: 2 is not supported"),
        (minimal(name=""), "name:"),
        (minimal(creator="0xabc"), "creator: '0xabc' does not match"),
        (minimal(parents=[0]), "parents[0]: 0 is not valid under any of the given schemas"),
        (
            minimal(model_card={"metrics": [{"name": "acc", "value": "high"}]}),
            "model_card.metrics[0].value: 'high' is not of type 'number'",
        ),
        (minimal(license={}), "license: {} should be non-empty"),
        (minimal(created_at="yesterday"), "created_at: 'yesterday' does not match"),
        (minimal(files=[{"path": "a", "size": 1, "sha256": "0" * 64}] * 2), "files: 'a' is listed twice"),
        (
            minimal(files=[{"path": "b", "size": 1, "sha256": "0" * 64}, {"path": "a", "size": 1, "sha256": "0" * 64}]),
            "not sorted by path",
        ),
    ],
)
def test_validate__bad_manifest__raises_readable_message(manifest, message):
    with pytest.raises(ManifestError) as info:
        validate(manifest)
    assert str(info.value).startswith("the manifest is invalid:")
    assert message in str(info.value)


def test_validate__missing_fields__all_listed():
    with pytest.raises(ManifestError) as info:
        validate({"schema_version": 1})
    for key in ("'name' is a required property", "'kind' is a required property", "'files' is a required property"):
        assert key in str(info.value)


def test_load_manifest__not_json__raises():
    with pytest.raises(ManifestError, match="not a JSON manifest"):
        load_manifest(b"{nope")


def test_canonical__nan__raises_manifest_error():
    with pytest.raises(ManifestError, match="cannot be serialised canonically"):
        canonical({"x": float("nan")})


def test_parse_hash__hex_cid_and_bytes__same_digest():
    digest = hashlib.sha256(b"m").digest()
    assert parse_hash("0x" + digest.hex()) == parse_hash(digest.hex()) == parse_hash(digest) == digest
    assert parse_hash(cid_from_digest(digest)) == parse_hash("ipfs://" + cid_from_digest(digest)) == digest
    with pytest.raises(ManifestError, match="32 bytes"):
        parse_hash("0x1234")
    with pytest.raises(ManifestError, match="not a content hash"):
        parse_hash("zzz")


# ------------------------------------------------------------------------------ verify


def test_verify__untouched_directory_with_manifest__ok(tmp_path):
    root = make_dir(tmp_path / "cap")
    result = pack(root, kind="dataset", progress=False)
    mf.write_manifest(result, root / MANIFEST_FILE)
    report = verify(root, result.content_hash_hex, progress=False)
    assert report.ok, report.describe()
    assert report.source == f"{MANIFEST_FILE} in the directory"
    assert report.describe().startswith("OK")


def test_verify__missing_extra_and_changed__each_reported(tmp_path):
    root = make_dir(tmp_path / "cap")
    result = pack(root, kind="dataset", progress=False)
    mf.write_manifest(result, root / MANIFEST_FILE)
    (root / "data" / "test.csv").unlink()
    (root / "new.txt").write_bytes(b"x")
    (root / "README.md").write_bytes(b"# changed and longer\n")
    report = verify(root, result.content_hash, progress=False)
    assert not report.ok and report.manifest_matches
    assert report.missing == ["data/test.csv"]
    assert report.extra == ["new.txt"]
    assert [c.path for c in report.changed] == ["README.md"]
    text = report.describe()
    assert "missing  data/test.csv" in text and "extra    new.txt" in text
    assert "changed  README.md: size 7 -> 21 bytes" in text


def test_verify__manifest_from_store__used_when_directory_has_none(tmp_path):
    root = make_dir(tmp_path / "cap")
    result = pack(root, kind="dataset", progress=False)
    store = LocalStore(tmp_path / "store")
    store.put(result.canonical)
    report = verify(root, result.content_hash, store=store, progress=False)
    assert report.ok and report.source.startswith("in LocalStore")
    (root / "z").write_bytes(b"now non-empty")
    report = verify(root, result.content_hash, store=store, progress=False)
    assert [c.path for c in report.changed] == ["z"]


def test_verify__local_manifest_of_other_capsule__mismatch_even_if_files_match(tmp_path):
    root = make_dir(tmp_path / "cap")
    result = pack(root, kind="dataset", progress=False)
    other = pack(root, kind="dataset", description="edited metadata", progress=False)
    mf.write_manifest(other, root / MANIFEST_FILE)
    report = verify(root, result.content_hash, progress=False)
    assert not report.ok and not report.manifest_matches
    assert not (report.missing or report.extra or report.changed)
    assert "metadata or file list differ" in report.describe()


def test_verify__no_manifest__repacks_with_capsule_toml(tmp_path):
    root = make_dir(tmp_path / "cap")
    (root / "capsule.toml").write_text('kind = "prompt"\n')
    result = pack(root, progress=False)
    assert verify(root, result.content_hash, progress=False).ok
    (root / "README.md").write_bytes(b"edited")
    report = verify(root, result.content_hash, progress=False)
    assert not report.ok
    assert "no manifest was found" in report.describe()


def test_verify__symlink_added_after_pack__reported_as_problem(tmp_path):
    root = make_dir(tmp_path / "cap")
    result = pack(root, kind="dataset", progress=False)
    (root / "l").symlink_to(root / "z")
    report = verify(root, result.content_hash, manifest=result.manifest, progress=False)
    assert not report.ok and "symbolic link" in report.describe()


# ------------------------------------------------------------------------------ CLI


@pytest.fixture
def env_store(tmp_path, monkeypatch):
    path = tmp_path / "store"
    monkeypatch.setenv("CODEXFIELD_STORE", str(path))
    return LocalStore(path)


def test_cli_pack__directory__prints_hash_cid_counts_and_stores_manifest(tmp_path, env_store):
    root = make_dir(tmp_path / "cap")
    out = CliRunner().invoke(pack_command, [str(root), "--kind", "dataset", "--name", "Demo", "--no-progress"])
    assert out.exit_code == 0, out.output
    expected = pack(root, kind="dataset", name="Demo", progress=False)
    assert f"content hash  {expected.content_hash_hex}" in out.output
    assert f"cid           {expected.cid}" in out.output
    assert "files         4" in out.output and f"bytes         {expected.total_bytes}" in out.output
    assert env_store.get(expected.cid) == expected.canonical
    assert (root / MANIFEST_FILE).read_bytes() == expected.canonical


def test_cli_pack__json_and_no_store__writes_only_out_file(tmp_path, env_store):
    root = make_dir(tmp_path / "cap")
    out_file = tmp_path / "m.json"
    out = CliRunner().invoke(
        pack_command, [str(root), "--kind", "model", "--json", "--no-store", "--out", str(out_file)]
    )
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["kind_id"] == 2 and summary["files"] == 4 and summary["store"] is None
    assert hashlib.sha256(out_file.read_bytes()).hexdigest() == summary["content_hash"][2:]
    assert not env_store.has(summary["cid"]) and not (root / MANIFEST_FILE).exists()


def test_cli_pack__symlink__exits_2_with_message(tmp_path, env_store):
    root = make_dir(tmp_path / "cap")
    (root / "l").symlink_to(root / "z")
    out = CliRunner().invoke(pack_command, [str(root), "--kind", "dataset"])
    assert out.exit_code == 2 and "l is a symbolic link" in out.output


def test_cli_verify__hash__exit_0_then_1_with_diff(tmp_path, env_store):
    root = make_dir(tmp_path / "cap")
    runner = CliRunner()
    packed = json.loads(runner.invoke(pack_command, [str(root), "--kind", "code", "--json"]).output)
    ok = runner.invoke(verify_command, [str(root), "--hash", packed["content_hash"]])
    assert ok.exit_code == 0 and ok.output.startswith("OK")
    (root / "data" / "train.csv").write_bytes(b"poisoned")
    bad = runner.invoke(verify_command, [str(root), "--hash", packed["cid"], "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["ok"] is False and [c["path"] for c in report["changed"]] == ["data/train.csv"]


def test_cli_verify__nothing_to_compare__usage_error(tmp_path):
    out = CliRunner().invoke(verify_command, [str(make_dir(tmp_path / "cap"))])
    assert out.exit_code == 2 and "--capsule ID" in out.output


def test_cli_verify__no_address_book__exits_2_with_deploy_hint(tmp_path, env_store, monkeypatch):
    import codexfield.deployments as deployments

    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path / "no-deployments")
    out = CliRunner().invoke(verify_command, [str(make_dir(tmp_path / "cap")), "--capsule", "1"])
    assert out.exit_code == 2, out.output
    assert "no address book" in out.output and "ape run deploy" in out.output


def test_schema__file__is_a_valid_draft_2020_12_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(mf.schema())
    assert mf.schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_cli_main__pack_and_verify__reachable_through_lazy_group(tmp_path, env_store):
    from codexfield.cli import main

    root = make_dir(tmp_path / "cap")
    runner = CliRunner()
    packed = runner.invoke(main, ["pack", str(root), "--kind", "knowledge", "--json"])
    assert packed.exit_code == 0, packed.output
    digest = json.loads(packed.output)["content_hash"]
    assert runner.invoke(main, ["verify", str(root), "--hash", digest]).exit_code == 0


def test_verify__broken_local_manifest_and_good_store_copy__ok_with_note(tmp_path):
    root = make_dir(tmp_path / "cap")
    result = pack(root, kind="dataset", progress=False)
    (root / MANIFEST_FILE).write_bytes(b"{not json")
    store = LocalStore(tmp_path / "store")
    store.put(result.canonical)
    report = verify(root, result.content_hash, store=store, progress=False)
    assert report.ok, report.describe()
    assert "note: ignored the manifest capsule.manifest.json in the directory: not a JSON manifest" in report.describe()


def test_verify__store_unreachable_but_repack_matches__ok_with_note(tmp_path):
    from codexfield.store import IpfsHttpStore

    root = make_dir(tmp_path / "cap")
    (root / "capsule.toml").write_text('kind = "code"\n')
    result = pack(root, progress=False)
    report = verify(root, result.content_hash, store=IpfsHttpStore("http://127.0.0.1:9", timeout=2), progress=False)
    assert report.ok and report.source == "re-packed from the directory"
    assert any("is 'ipfs daemon' running" in n for n in report.notes)
