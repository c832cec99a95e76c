"""`codexfield capsule|royalties|rate|attest` against the deployed system on the test chain,
and the bad inputs of issue 14: one line, non-zero exit, nothing sent."""

from __future__ import annotations

import pytest

from codexfield import scopes

LICENSE = """license "CLI metered" for capsule {capsule}
price 0.002 USDC per MU, upfront 1 USDC
meter llm.tokens.1k
allow inference, research, derivatives
derivatives pay 10%
"""


def _dir(tmp_path, name, text):
    d = tmp_path / name
    d.mkdir()
    (d / "data.csv").write_text(text)
    (d / "capsule.toml").write_text(
        f'name = "{name}"\nkind = "dataset"\n[dataset_card]\nlanguage = ["en"]\nlicense = "cc-by-4.0"\n'
    )
    return d


@pytest.fixture(scope="module")
def minted(cli, creator, tmp_path_factory):
    d = _dir(tmp_path_factory.mktemp("cap"), "weather", "t,v\n1,2\n")
    r = cli("capsule", "mint", str(d), "--json", account=creator)
    assert r.code == 0, r.err
    return r.json


def test_mint__prints_the_capsule_and_stores_the_manifest(minted, cf, creator):
    assert minted["name"] == "weather" and minted["kind"] == "dataset" and minted["state"] == "active"
    assert minted["owner"] == creator.address and minted["version"] == 1
    assert cf.registry.ownerOf(minted["capsule_id"]) == creator.address


def test_mint__same_content_twice__says_which_capsule_and_sends_nothing(cli, creator, minted, tmp_path, no_tx):
    d = _dir(tmp_path, "weather", "t,v\n1,2\n")
    with no_tx(creator):
        r = cli("capsule", "mint", str(d), account=creator)
    assert r.code == 1 and r.err.count("\n") == 1
    assert f"already capsule {minted['capsule_id']}" in r.err


def test_show__human_and_json(cli, minted):
    r = cli("capsule", "show", str(minted["capsule_id"]))
    assert r.code == 0 and f"capsule {minted['capsule_id']} (dataset, active) v1" in r.out
    j = cli("capsule", "show", str(minted["capsule_id"]), "--json").json
    assert set(j) == {
        "capsule_id",
        "kind",
        "content_hash",
        "cid",
        "creator",
        "owner",
        "created_at",
        "version",
        "previous_id",
        "latest_version",
        "parents",
        "state",
        "uri",
    }


def test_version_then_state(cli, creator, minted, tmp_path):
    d = _dir(tmp_path, "weather", "t,v\n1,2\n2,3\n")
    r = cli("capsule", "version", str(minted["capsule_id"]), str(d), "--json", account=creator)
    assert r.code == 0, r.err
    assert r.json["version"] == 2 and r.json["previous_id"] == minted["capsule_id"]
    r = cli("capsule", "state", str(r.json["capsule_id"]), "deprecated", "--json", account=creator)
    assert r.code == 0, r.err and r.json["state"] == "deprecated"


def test_version__not_owner__refused_before_sending(cli, stranger, minted, tmp_path, no_tx):
    d = _dir(tmp_path, "other", "x\n")
    with no_tx(stranger):
        r = cli("capsule", "version", str(minted["capsule_id"]), str(d), account=stranger)
    assert r.code == 1 and "only its owner publishes versions" in r.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["capsule", "show", "999"], "no capsule 999"),
        (["royalties", "status", "999"], "no capsule 999"),
        (["royalties", "status", "1", "--token", "DOGE"], "token 'DOGE' is not in"),
    ],
)
def test_unknown_capsule_or_token__one_line(cli, minted, argv, message):
    r = cli(*argv)
    assert r.code == 1 and message in r.err and r.err.count("\n") == 1 and "Traceback" not in r.err


def test_unknown_alias__one_line_no_tx(cli, minted, tmp_path, creator, no_tx):
    with no_tx(creator):
        r = cli("royalties", "claim", str(minted["capsule_id"]), account="nobody-here")
    assert r.code == 1 and "unknown account alias" in r.err and r.err.count("\n") == 1


def test_unknown_network_dead_rpc_and_unset_rpc_url(cli, minted, monkeypatch):
    r = cli("capsule", "show", "1", net="ethereum:nonet")
    assert r.code == 1 and "unknown network" in r.err and r.err.count("\n") == 1
    r = cli("capsule", "show", "1", net="http://127.0.0.1:9")
    assert r.code == 1 and "cannot reach the RPC" in r.err and r.err.count("\n") == 1
    monkeypatch.delenv("SEPOLIA_RPC_URL", raising=False)
    r = cli("capsule", "show", "1", net="ethereum:sepolia:node")
    assert r.code == 1 and "SEPOLIA_RPC_URL is not set" in r.err


def test_missing_address_book__one_line(cli, tmp_path):
    r = cli("capsule", "show", "1", book=str(tmp_path / "none.json"))
    assert r.code == 1 and "no address book at" in r.err and r.err.count("\n") == 1


@pytest.fixture(scope="module")
def used_credential(cf, minted, creator, consumer, node):
    """A credential on the capsule with metered usage settled (so royalties and rating exist)."""
    cf.test_token("USDC").mint(consumer, cf.units("USDC", 100), sender=consumer)
    terms = cf.publish_terms(LICENSE.format(capsule=minted["capsule_id"]), sender=creator)
    cred = cf.purchase(terms, sender=consumer)
    cf.deposit("USDC", cf.units("USDC", 10), sender=consumer)
    cf.test_token("CDX").mint(node, cf.staking.params().min_stake, sender=node)
    cf.register_node(node)  # the meter pays only serving nodes
    v = cf.voucher(cred, node, mu=500, calls=5, latency_ms=250)
    assert cf.ingest([(v, cf.sign(v, consumer))], sender=node).applied == 1
    return cred


def test_royalties_status_propagate_claim__in_token_units(cli, minted, used_credential, creator, node, cf):
    cid = str(minted["capsule_id"])
    s = cli("royalties", "status", cid, "--json").json
    assert s["token"] == "USDC" and s["vault"].endswith(" USDC")
    r = cli("royalties", "propagate", cid, "--json", account=node)
    assert r.code == 0, r.err
    claimable = r.json["capsules"][0]["claimable"]
    assert claimable != "0 USDC" and r.json["capsules"][0]["vault"] == "0 USDC"
    before = cf.token("USDC").balanceOf(creator)
    r = cli("royalties", "claim", cid, account=creator)
    assert r.code == 0 and r.out.startswith(f"claimed {claimable} to {creator.address}")
    assert cf.token("USDC").balanceOf(creator) > before
    r = cli("royalties", "claim", cid, account=creator)
    assert r.code == 1 and "nothing to claim in USDC; nothing was sent" in r.err


def test_rate_and_attest(cli, cf, admin, minted, used_credential, consumer, stranger, tmp_path, no_tx):
    cid = str(minted["capsule_id"])
    r = cli("rate", cid, "4", "--credential", str(used_credential), "--json", account=consumer)
    assert r.code == 0, r.err
    assert r.json["stars"] == 4 and r.json["ratings"] >= 1
    with no_tx(stranger):
        r = cli("rate", cid, "4", "--credential", str(used_credential), account=stranger)
    assert r.code == 1 and "is held by" in r.err
    report = tmp_path / "audit.txt"
    report.write_text("ok\n")
    with no_tx(stranger):
        r = cli("attest", cid, "ISO-42001", "--passed", "--report", str(report), account=stranger)
    assert r.code == 1 and "is not an auditor" in r.err
    rep = cf.contract("Reputation")
    rep.grantRole(rep.AUDITOR_ROLE(), stranger, sender=admin)
    r = cli(
        "attest",
        cid,
        "ISO-42001",
        "--passed",
        "--report",
        str(report),
        "--valid-days",
        "30",
        "--json",
        account=stranger,
    )
    assert r.code == 0, r.err
    assert r.json["passed"] is True and r.json["valid_until"] > 0


def test_authorize_helper_still_true(cf, used_credential, consumer):
    assert cf.authorize(used_credential, consumer, scopes.mask_of(["inference"]))
