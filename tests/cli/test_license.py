"""`codexfield license publish|show|purchase|credential|revoke` on the deployed system."""

from __future__ import annotations

import pytest

TERMS = """license "CLI terms" for capsule {capsule}
price 0.002 USDC per MU, upfront 1 USDC
meter llm.tokens.1k
duration 30 days
allow inference, research
revocable by licensor with notice 0 days
"""


@pytest.fixture(scope="module")
def capsule(cli, licensor, tmp_path_factory):
    d = tmp_path_factory.mktemp("lic") / "corpus"
    d.mkdir()
    (d / "a.txt").write_text("license test corpus\n")
    r = cli("capsule", "mint", str(d), "--kind", "dataset", "--json", account=licensor)
    assert r.code == 0, r.err
    return r.json["capsule_id"]


@pytest.fixture(scope="module")
def terms_file(capsule, tmp_path_factory):
    f = tmp_path_factory.mktemp("ldl") / "terms.ldl"
    f.write_text(TERMS.format(capsule=capsule))
    return f


@pytest.fixture(scope="module")
def terms(cli, terms_file, licensor):
    r = cli("license", "publish", str(terms_file), "--json", account=licensor)
    assert r.code == 0, r.err
    return r.json["terms_id"]


def test_publish_again__existing_terms__refused_no_tx(cli, terms, terms_file, licensor, no_tx):
    with no_tx(licensor):
        r = cli("license", "publish", str(terms_file), account=licensor)
    assert r.code == 1 and f"these terms already exist as terms {terms}" in r.err and r.err.count("\n") == 1


def test_show__ldl_and_token_units(cli, terms):
    r = cli("license", "show", str(terms), "--json")
    assert r.code == 0, r.err
    assert r.json["upfront"] == "1 USDC" and r.json["price_per_mu"] == "0.002 USDC"
    assert "price 0.002 USDC per MU, upfront 1 USDC" in r.json["ldl"]


def test_unknown_terms_and_credential(cli, terms, consumer, no_tx):
    with no_tx(consumer):
        r = cli("license", "purchase", "999", account=consumer)
    assert r.code == 1 and "no licence terms with id 999" in r.err
    r = cli("license", "credential", "999")
    assert r.code == 1 and "no credential 999" in r.err


def test_purchase__no_funds__says_so_and_sends_nothing(cli, terms, stranger, no_tx):
    with no_tx(stranger):
        r = cli("license", "purchase", str(terms), account=stranger)
    assert r.code == 1 and "holds 0 USDC, needs 1 USDC; fund the account first" in r.err


def test_purchase__max_upfront_below_fee__refused(cli, terms, consumer, no_tx):
    with no_tx(consumer):
        r = cli("license", "purchase", str(terms), "--max-upfront", "0.5 USDC", account=consumer)
    assert r.code == 1 and "above --max-upfront 0.5 USDC" in r.err
    with no_tx(consumer):
        r = cli("license", "purchase", str(terms), "--max-upfront", "0.5", account=consumer)
    assert r.code == 1 and "above --max-upfront 0.5 USDC" in r.err
    with no_tx(consumer):
        r = cli("license", "purchase", str(terms), "--max-upfront", "1.0000001 USDC", account=consumer)
    assert r.code == 1 and "more than 6 decimals" in r.err


def test_purchase_credential_revoke(cli, cf, terms, consumer, licensor, no_tx):
    cf.test_token("USDC").mint(consumer, cf.units("USDC", 5), sender=consumer)
    r = cli("license", "purchase", str(terms), "--json", account=consumer)
    assert r.code == 0, r.err
    assert r.json["paid"] == "1 USDC" and r.json["status"] == "valid" and r.json["holder"] == consumer.address
    cred = r.json["credential_id"]
    r = cli("license", "credential", str(cred), "--json")
    assert r.code == 0 and r.json["terms_id"] == terms
    r = cli("license", "revoke", str(cred), "--reason", "test", "--json", account=licensor)
    assert r.code == 0, r.err
    assert r.json["revoked_at"] > 0
    with no_tx(licensor):
        r = cli("license", "revoke", str(cred), "--reason", "again", account=licensor)
    assert r.code == 1 and "already revoked" in r.err
