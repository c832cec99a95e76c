"""LDL against the real LicenseManager: publish compiled terms, read them back, decompile;
the `license publish` / `license show` commands end to end on the test chain.

Skipped while the branch has no LicenseManager (it is written in parallel, feat/license).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from codexfield import deployments
from codexfield.cli.license import license_group
from codexfield.ldl import compile_ldl, decompile
from codexfield.ldl.chain import publish_terms, read_terms

SOURCE = """license "Research metered v1" for capsule {capsule}
price 0.002 USDC per MU, upfront 10 USDC
meter llm.tokens.1k
duration 30 days; quota 1_000_000 MU; rate 500 MU per hour
allow research, derivatives, medical; deny commercial
derivatives pay 10%
revocable by licensor with notice 7 days, by arbiter
max 100 credentials
transferable
text 0x{text}
"""


@pytest.fixture(scope="module")
def manager(project, admin, registry, accounts):
    contract_type = getattr(project, "LicenseManager", None)
    if contract_type is None:
        pytest.skip("no LicenseManager in this branch yet")
    lm = admin.deploy(contract_type, registry, admin, 86_400)
    lm.wire(accounts[8], admin.deploy(project.MockRevenueSink), sender=admin)  # create_terms needs a wired sink
    return lm


@pytest.fixture(scope="module")
def capsule(mint_capsule, licensor):
    return mint_capsule(licensor)


@pytest.fixture(scope="module")
def tokens(usdc):
    return {"USDC": {"address": str(usdc.address), "decimals": 6}}


@pytest.fixture
def cli_network(manager, registry, tokens, chain, networks, tmp_path, monkeypatch):
    """The test chain's network choice, with an address book (LicenseManager, CapsuleRegistry,
    tokens) saved where the CLI looks for it."""
    provider = networks.provider
    book = deployments.AddressBook(
        chain_id=chain.chain_id,
        contracts={"LicenseManager": str(manager.address), "CapsuleRegistry": str(registry.address)},
        tokens=tokens,
    )
    deployments.save(book, provider.network.ecosystem.name, provider.network.name, tmp_path)
    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path)
    return f"{provider.network.ecosystem.name}:{provider.network.name}:{provider.name}"


def test_publish_terms__reads_back_the_same_terms(manager, licensor, capsule, tokens):
    lic = compile_ldl(SOURCE.format(capsule=capsule, text="ab" * 32), token_list=tokens)
    terms_id = publish_terms(manager, lic.terms, licensor)
    back = read_terms(manager, terms_id)
    assert back == lic.terms
    text = decompile(back, token_list=tokens, name=lic.name)
    assert compile_ldl(text, token_list=tokens).terms == lic.terms


def test_cli_publish_then_show(manager, registry, licensor, capsule, tokens, accounts, chain, tmp_path, cli_network):
    network = cli_network
    index = [a.address for a in accounts].index(licensor.address)
    src = tmp_path / "terms.ldl"
    src.write_text(SOURCE.format(capsule=capsule, text="cd" * 32))

    out = CliRunner().invoke(license_group, ["publish", str(src), "--network", network, "--account", f"TEST:{index}"])
    assert out.exit_code == 0, out.output
    terms_id = int(out.output.strip().splitlines()[-1])

    out = CliRunner().invoke(license_group, ["show", str(terms_id), "--network", network])
    assert out.exit_code == 0, out.output
    assert "price 0.002 USDC per MU, upfront 10 USDC" in out.output
    assert compile_ldl(out.output, token_list=tokens).terms == read_terms(manager, terms_id)

    out = CliRunner().invoke(license_group, ["compile", str(src), "--json", "--chain", str(chain.chain_id)])
    assert json.loads(out.output)["terms"]["capsule_id"] == str(capsule)


def test_cli_publish__revert_is_reported_not_raised(
    manager, registry, capsule, tokens, accounts, stranger, chain, tmp_path, cli_network
):
    network = cli_network
    index = [a.address for a in accounts].index(stranger.address)
    src = tmp_path / "terms.ldl"
    src.write_text(SOURCE.format(capsule=capsule, text="ef" * 32))  # the stranger does not own the capsule
    out = CliRunner().invoke(license_group, ["publish", str(src), "--network", network, "--account", f"TEST:{index}"])
    before = stranger.nonce
    assert out.exit_code == 1 and "belongs to" in out.output and "its owner publishes terms" in out.output
    assert stranger.nonce == before  # refused before sending


def test_cli_publish__existing_terms__refused_without_a_transaction(
    manager, registry, licensor, capsule, tokens, accounts, chain, tmp_path, cli_network
):
    network = cli_network
    index = [a.address for a in accounts].index(licensor.address)
    src = tmp_path / "terms.ldl"
    src.write_text(SOURCE.format(capsule=capsule, text="12" * 32))
    args = ["publish", str(src), "--network", network, "--account", f"TEST:{index}"]
    first = CliRunner().invoke(license_group, args)
    assert first.exit_code == 0, first.output
    before = licensor.nonce
    again = CliRunner().invoke(license_group, args)
    assert again.exit_code == 1 and licensor.nonce == before
    assert f"these terms already exist as terms {first.output.strip()}" in again.output
