"""deploy_system end to end on the test chain: fresh deploy, idempotent re-run, finishing a
half-done deployment, dry run (plan + gas estimates, nothing sent), and the `ape run deploy` CLI."""

from __future__ import annotations

import json

import pytest

from codexfield import deployments
from codexfield.deploy import ROLES, DeployConfig, deploy_system, verify

CONTRACTS = (
    "IdentityRegistry",
    "CapsuleRegistry",
    "LicenseManager",
    "RoyaltyRouter",
    "AccessStaking",
    "UsageMeter",
    "Reputation",
)


@pytest.fixture
def book_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path)
    return tmp_path


def _wired(project, book, reporters):
    c = {name: getattr(project, name).at(book.contracts[name]) for name in CONTRACTS}
    registry, lm, router = c["CapsuleRegistry"], c["LicenseManager"], c["RoyaltyRouter"]
    staking, meter = c["AccessStaking"], c["UsageMeter"]
    assert registry.license_manager() == lm.address
    assert lm.revenue_sink() == router.address
    assert lm.usage_meter() == meter.address
    assert (router.license_manager(), router.usage_meter()) == (lm.address, meter.address)
    for info in book.tokens.values():
        assert router.token_allowed(info["address"])
    assert meter.staking() == staking.address
    assert staking.usage_meter() == meter.address
    assert staking.genesis() == meter.genesis() and staking.epoch_length() == meter.epoch_length()
    assert staking.reward_token() == book.tokens["USDC"]["address"]
    assert staking.stake_token() == book.tokens["CDX"]["address"]
    for r in reporters:  # seated by the constructor from epoch 0
        assert staking.is_reporter(r, staking.current_epoch())
    return c


def test_deploy_system__fresh__deploys_wires_and_writes_the_book(project, admin, reporter, book_dir, chain):
    lines: list[str] = []
    system = deploy_system(admin, DeployConfig(test_tokens=True, reporters=[reporter.address]), log=lines.append)
    book = system.book
    assert set(CONTRACTS) <= set(book.contracts)
    # The typed system: each contract by role and by name, the test tokens by symbol.
    assert system.meter.address == book.contracts["UsageMeter"] == system.contracts["UsageMeter"].address
    assert system.staking.usage_meter() == system.meter.address and system.usdc.decimals() == 6
    assert set(system.contracts) == set(CONTRACTS)
    assert set(book.tokens) == {"USDC", "CDX"} and book.tokens["USDC"]["decimals"] == 6
    _wired(project, book, [reporter.address])
    data = json.loads(book.path.read_text())
    assert data["chain_id"] == chain.chain_id and data["contracts"] == book.contracts
    assert book.path.parent == book_dir


def test_deploy_system__rerun__sends_nothing(admin, reporter, book_dir):
    config = DeployConfig(test_tokens=True, reporters=[reporter.address])
    first = deploy_system(admin, config, log=lambda _: None).book
    nonce = admin.nonce
    lines: list[str] = []
    second = deploy_system(admin, config, log=lines.append).book
    assert admin.nonce == nonce
    assert second.contracts == first.contracts and second.tokens == first.tokens
    assert sum("already at" in line for line in lines) == len(CONTRACTS) + 2  # + the two test tokens


def test_deploy_system__half_done__keeps_what_exists_and_finishes(project, admin, reporter, book_dir, networks):
    config = DeployConfig(test_tokens=True, reporters=[reporter.address])
    full = deploy_system(admin, config, log=lambda _: None).book
    net = networks.provider.network
    # A crash after the registry: the book names only the tokens and the first two contracts,
    # deployed but not wired yet (wiring runs after every deployment, and the registry's
    # `wire` is once, so the full run's already-wired registry cannot stand in for them).
    kept = {
        "IdentityRegistry": admin.deploy(project.IdentityRegistry).address,
        "CapsuleRegistry": admin.deploy(project.CapsuleRegistry, admin, config.royalty_bps).address,
    }
    partial = deployments.AddressBook(
        chain_id=full.chain_id,
        block=full.block,
        tokens=dict(full.tokens),
        contracts=dict(kept),
    )
    deployments.save(partial, net.ecosystem.name, net.name)
    done = deploy_system(admin, config, log=lambda _: None).book
    for k in ("IdentityRegistry", "CapsuleRegistry"):
        assert done.contracts[k] == kept[k]
    assert done.tokens == full.tokens
    assert done.contracts["UsageMeter"] != full.contracts["UsageMeter"]
    _wired(project, done, [reporter.address])
    # A book naming an address without the right code is redeployed, not trusted.
    bad = deployments.load(net.ecosystem.name, net.name)
    bad.contracts["RoyaltyRouter"] = admin.address
    deployments.save(bad, net.ecosystem.name, net.name)
    fixed = deploy_system(admin, config, log=lambda _: None).book
    assert fixed.contracts["RoyaltyRouter"] != admin.address
    _wired(project, fixed, [reporter.address])


def test_deploy_system__dry_run__prints_plan_with_gas_and_sends_nothing(admin, book_dir, networks):
    nonce = admin.nonce
    lines: list[str] = []
    book = deploy_system(admin, DeployConfig(test_tokens=True), dry_run=True, log=lines.append).book
    assert admin.nonce == nonce
    assert not book.contracts
    net = networks.provider.network
    assert not deployments.book_path(net.ecosystem.name, net.name).exists()
    text = "\n".join(lines)
    for name in CONTRACTS + ("USDC", "CDX"):
        assert f"would deploy {name}" in text
    gas = [int(line.rsplit("~", 1)[1].split()[0].replace(",", "")) for line in lines if "would deploy" in line]
    assert len(gas) == len(CONTRACTS) + 2 and all(g > 100_000 for g in gas)
    assert "plan:" in text and "would wire" in text


def test_deploy_system__handover__deployer_keeps_nothing_and_verify_passes(
    project, admin, reporter, arbiter, stranger, book_dir, networks
):
    config = DeployConfig(
        test_tokens=True,
        admin=stranger.address,
        reporters=[reporter.address],
        pausers=[arbiter.address],
        arbiters=[arbiter.address],
        auditors=[reporter.address],
    )
    book = deploy_system(admin, config, log=lambda _: None).book
    lines: list[str] = []
    assert verify(book, log=lines.append) == [], "\n".join(lines)
    for name, roles in ROLES.items():
        if name not in book.contracts:
            continue
        c = getattr(project, name).at(book.contracts[name])
        for role in roles:
            assert not c.hasRole(getattr(c, role)(), admin), (name, role)
        assert c.hasRole(c.DEFAULT_ADMIN_ROLE(), stranger)
        assert c.hasRole(c.PAUSER_ROLE(), arbiter)
    # The book's first block survives a rerun, even when it is 0 (a fresh chain).
    net = networks.provider.network
    book.block = 0
    deployments.save(book, net.ecosystem.name, net.name)
    nonce = admin.nonce
    again = deploy_system(admin, config, log=lambda _: None).book
    assert again.block == 0 and admin.nonce == nonce
    # A deviation (governance grants a role nobody planned) is reported.
    meter = project.UsageMeter.at(book.contracts["UsageMeter"])
    meter.grantRole(meter.PAUSER_ROLE(), admin, sender=stranger)
    problems = verify(again, log=lambda _: None)
    assert any("UsageMeter.PAUSER_ROLE" in p for p in problems)


def _local_doc_commands() -> list[str]:
    """docs/operate.md's local deploy commands (the first console block of "### Deploy")."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "operate.md").read_text()
    block = text.split("### Deploy", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    return [line[2:].strip() for line in block.splitlines() if line.startswith("$ ")]


@pytest.mark.parametrize("doc_command", _local_doc_commands())
def test_ape_run_deploy__cli(tmp_path, doc_command):
    """The documented local `ape run deploy` commands, verbatim, each in its own process (its own
    anvil), writing the book to a temporary folder. In-process, the click command would re-enter
    the network context of the test session's provider and leave the session on a fresh chain."""
    import os
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    env = dict(os.environ, CODEXFIELD_DEPLOYMENTS=str(tmp_path))
    ape = Path(sys.executable).with_name("ape")
    argv = shlex.split(doc_command)
    assert argv[:2] == ["ape", "run"]
    cmd = [str(ape)] + argv[1:]
    for _ in range(3):  # ape-foundry's random port can clash with the session's anvil: only that is retried
        out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        if "cannot connect to ethereum:local:foundry" not in out.stderr:  # (its anvil did not come up)
            break
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARNING: no --reporter" in out.stdout
    if "--dry-run" in argv:
        assert "plan:" in out.stdout and "dry run: nothing was sent" in out.stdout
        assert not deployments.book_path("ethereum", "local", tmp_path).exists()
        return
    assert "verified: every contract, wiring step and role matches" in out.stdout
    book = deployments.load("ethereum", "local", directory=tmp_path)
    assert set(CONTRACTS) <= set(book.contracts)
