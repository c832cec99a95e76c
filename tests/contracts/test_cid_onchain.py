"""The CID derived on chain (`CapsuleRegistry.cid` / `tokenURI`) equals the Python one, and a
packed directory verifies against the content hash a capsule was minted with."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from codexfield import deployments
from codexfield.cid import cid_from_digest, digest_from_cid
from codexfield.cli.manifest import verify_command
from codexfield.manifest import (
    MANIFEST_FILE,
    ManifestError,
    onchain_content_hash,
    pack,
    verify_capsule,
    write_manifest,
)

nonzero_hashes = st.binary(min_size=32, max_size=32).filter(any)


@given(st.binary(min_size=32, max_size=32))
def test_cid__random_hash__chain_equals_python(registry, h):
    onchain = registry.cid(h)
    assert onchain == cid_from_digest(h)
    assert digest_from_cid(onchain) == h


@settings(max_examples=8)
@given(nonzero_hashes)
def test_token_uri__minted_capsule__is_ipfs_plus_python_cid(registry, creator, mint_capsule, h):
    capsule_id = mint_capsule(creator, kind=3, content_hash=h)
    uri = registry.tokenURI(capsule_id)
    assert uri.startswith("ipfs://")
    assert uri.removeprefix("ipfs://") == cid_from_digest(h) == registry.cid(h)


@pytest.fixture
def capsule_dir(tmp_path):
    root = tmp_path / "iris"
    (root / "data").mkdir(parents=True)
    # A nonce row: each test mints its own content (the registry refuses a content hash twice,
    # whatever an earlier module left on the session chain).
    (root / "data" / "iris.csv").write_bytes(
        b"sepal,petal,species\n5.1,1.4,setosa\n" + f"# {os.urandom(8).hex()}\n".encode()
    )
    (root / "capsule.toml").write_text('name = "Iris"\nkind = "dataset"\n[dataset_card]\nsize = { records = 1 }\n')
    return root


@pytest.fixture
def minted(registry, creator, capsule_dir):
    result = pack(capsule_dir, progress=False)
    write_manifest(result, capsule_dir / MANIFEST_FILE)
    tx = registry.mint(result.kind_id, result.content_hash, [], [], "", sender=creator)
    return tx.return_value, result


def test_verify_capsule__packed_then_minted__matches_chain(registry, capsule_dir, minted):
    capsule_id, result = minted
    assert registry.capsule(capsule_id).kind == 1
    assert registry.tokenURI(capsule_id) == "ipfs://" + result.cid
    report = verify_capsule(capsule_dir, registry, capsule_id, progress=False)
    assert report.ok, report.describe()


def test_verify_capsule__file_changed_after_mint__reports_it(registry, capsule_dir, minted):
    capsule_id, _ = minted
    (capsule_dir / "data" / "iris.csv").write_bytes(b"sepal,petal,species\n5.1,1.4,virginica\n")
    report = verify_capsule(capsule_dir, registry, capsule_id, progress=False)
    assert not report.ok
    assert [c.path for c in report.changed] == ["data/iris.csv"]


def test_onchain_content_hash__unknown_capsule__raises_readable_error(registry):
    with pytest.raises(ManifestError, match="capsule 999999 does not exist"):
        onchain_content_hash(registry, 999_999)


@pytest.fixture
def address_book(tmp_path, monkeypatch, registry, chain):
    """An address book for the running test network that names the session registry."""
    directory = tmp_path / "deployments"
    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", directory)
    book = deployments.AddressBook(chain_id=chain.chain_id, contracts={"CapsuleRegistry": registry.address})
    network = chain.provider.network
    deployments.save(book, network.ecosystem.name, network.name)
    return f"{network.ecosystem.name}:{network.name}:{chain.provider.name}"


def test_cli_verify__capsule_on_live_test_chain__exit_0_then_1(
    tmp_path, monkeypatch, address_book, capsule_dir, minted
):
    monkeypatch.setenv("CODEXFIELD_STORE", str(tmp_path / "store"))
    capsule_id, result = minted
    runner = CliRunner()
    ok = runner.invoke(verify_command, [str(capsule_dir), "--capsule", str(capsule_id), "--network", address_book])
    assert ok.exit_code == 0, ok.output
    assert f"capsule {capsule_id} on {address_book}" in ok.output and "OK" in ok.output
    (capsule_dir / "extra.txt").write_bytes(b"x")
    bad = runner.invoke(verify_command, [str(capsule_dir), str(capsule_id), "--network", address_book, "--json"])
    assert bad.exit_code == 1, bad.output
    report = json.loads(bad.output)
    assert report["capsule_id"] == capsule_id and report["extra"] == ["extra.txt"]
    assert report["expected_hash"] == result.content_hash_hex


def test_cli_verify__unknown_capsule_on_live_chain__exits_2(capsule_dir, address_book):
    out = CliRunner().invoke(verify_command, [str(capsule_dir), "--capsule", "424242", "--network", address_book])
    assert out.exit_code == 2 and "capsule 424242 does not exist" in out.output


def test_connected__network_already_active__reuses_live_provider(address_book, chain, registry):
    from ape import networks

    live = networks.provider
    with deployments.connected(address_book) as book:
        assert networks.provider is live
        assert book.address("CapsuleRegistry") == registry.address
