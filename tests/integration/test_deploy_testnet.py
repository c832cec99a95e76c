"""The README's testnet deploy, as a deployer runs it: against anvil started with Sepolia's
(11155111) and Base Sepolia's (84532, `--optimism`) chain ids and 1 s blocks, a keyfile account
imported into a scratch ape data folder, real ERC-20s, the README commands run verbatim as
subprocesses (`ethereum:sepolia:node` / `ethereum:base-sepolia:node`), then the chain checked
with web3. Also: SIGKILL at several points and rerun (nothing resent), `codexfield deploy verify`
catching a deviation, and every bad input refused in one line with the nonce unchanged."""

from __future__ import annotations

import pytest

from deploy_rehearsal import (
    DEPLOYER,
    DEPLOYER_KEY,
    PASSPHRASE,
    ROLE_HOLDERS,
    ROOT,
    UNFUNDED_KEY,
    artifact,
    import_account,
    readme_deploy_block,
    run_killed,
    start,
)

ROLE_CONTRACTS = ("CapsuleRegistry", "LicenseManager", "RoyaltyRouter", "AccessStaking", "UsageMeter", "Reputation")


def _commands(network: str) -> list[str]:
    """README's commands (the `export`s are what the rehearsal's environment supplies)."""
    cmds = [c for c in readme_deploy_block() if not c.startswith("export ")]
    assert any(c.startswith(".venv/bin/ape run deploy") for c in cmds), cmds
    return [c.replace("ethereum:sepolia:node", f"ethereum:{network}:node") for c in cmds]


def _role(r, c, name: str) -> bytes:
    return getattr(c.functions, name)().call()


def _check_chain(r, network: str) -> dict:
    book = r.book(network)
    assert book["chain_id"] == r.chain_id
    c = {name: r.contract(name, addr) for name, addr in book["contracts"].items()}
    timelock = c["GovernanceTimelock"]
    assert timelock.functions.hasRole(_role(r, timelock, "PROPOSER_ROLE"), ROLE_HOLDERS["SAFE"]).call()
    assert timelock.functions.hasRole(_role(r, timelock, "DEFAULT_ADMIN_ROLE"), timelock.address).call()
    assert not timelock.functions.hasRole(_role(r, timelock, "DEFAULT_ADMIN_ROLE"), DEPLOYER).call()
    # Wiring.
    assert c["CapsuleRegistry"].functions.license_manager().call() == c["LicenseManager"].address
    assert c["LicenseManager"].functions.usage_meter().call() == c["UsageMeter"].address
    assert c["AccessStaking"].functions.usage_meter().call() == c["UsageMeter"].address
    assert c["AccessStaking"].functions.stake_token().call() == r.tokens["CDX"]
    assert c["AccessStaking"].functions.reward_token().call() == r.tokens["USDC"]
    for sym in ("CDX", "USDC"):
        assert book["tokens"][sym]["address"] == r.tokens[sym]
        assert c["RoyaltyRouter"].functions.token_allowed(r.tokens[sym]).call()
    assert book["tokens"]["USDC"]["decimals"] == 6 and book["tokens"]["CDX"]["decimals"] == 18
    # Handover: the timelock administers, named holders hold, the deployer holds nothing.
    for name in ROLE_CONTRACTS:
        k = c[name]
        roles = [f.fn_name for f in k.all_functions() if f.fn_name.endswith("_ROLE")]
        for role in roles:
            assert not k.functions.hasRole(_role(r, k, role), DEPLOYER).call(), (name, role)
        assert k.functions.hasRole(_role(r, k, "DEFAULT_ADMIN_ROLE"), timelock.address).call()
        assert k.functions.hasRole(_role(r, k, "PAUSER_ROLE"), ROLE_HOLDERS["GUARDIAN"]).call()
    for name in ("CapsuleRegistry", "LicenseManager"):
        assert c[name].functions.hasRole(_role(r, c[name], "ARBITER_ROLE"), ROLE_HOLDERS["ARBITER"]).call()
    assert c["Reputation"].functions.hasRole(_role(r, c["Reputation"], "AUDITOR_ROLE"), ROLE_HOLDERS["AUDITOR"]).call()
    for rep in ("REPORTER_1", "REPORTER_2", "REPORTER_3"):
        staking = c["AccessStaking"]
        assert staking.functions.is_reporter(ROLE_HOLDERS[rep], staking.functions.current_epoch().call()).call()
    return book


@pytest.mark.parametrize(
    ("network", "chain_id", "optimism"),
    [("sepolia", 11155111, False), ("base-sepolia", 84532, True)],
    ids=["sepolia", "base-sepolia-optimism"],
)
def test_readme_command__testnet__deploys_hands_over_and_verifies(tmp_path, network, chain_id, optimism):
    r = start(tmp_path, chain_id, optimism=optimism)
    try:
        dry, deploy, verify = _commands(network)
        out = r.bash(dry)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "would deploy GovernanceTimelock" in out.stdout and "plan:" in out.stdout
        assert "preflight: chain" in out.stdout and "dry run: nothing was sent" in out.stdout
        assert r.nonce() == 0 and not (r.books / f"ethereum-{network}.json").exists()

        out = r.bash(deploy)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Traceback" not in out.stdout + out.stderr
        assert "verified: every contract, wiring step and role matches" in out.stdout
        book = _check_chain(r, network)
        sent = r.nonce()

        again = r.bash(deploy)  # a rerun sends nothing and keeps the first block
        assert again.returncode == 0, again.stdout + again.stderr
        assert r.nonce() == sent and "(0 transaction(s) sent in this run)" in again.stdout
        assert r.book(network)["block"] == book["block"] and r.book(network)["contracts"] == book["contracts"]

        out = r.bash(verify)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"{ROLE_HOLDERS['REPORTER_1']} sits in the Proof-of-Access reporter committee" in out.stdout

        stranger = _grant_outside_handover(r, network)  # verify names a holder nobody planned
        out = r.bash(verify)
        assert out.returncode == 1
        assert "UsageMeter.PAUSER_ROLE: held by" in out.stdout and stranger in out.stdout
        assert out.stderr.strip().splitlines()[-1].startswith("Error: the chain does not match")
    finally:
        r.stop()


def _sent_by(r, sender: str) -> list[tuple]:
    """Every transaction `sender` has on the chain, as (to, input)."""
    sent = []
    for number in range(r.w3.eth.block_number + 1):
        for tx in r.w3.eth.get_block(number, full_transactions=True).transactions:
            if tx["from"].lower() == sender.lower():
                sent.append((tx["to"], bytes(tx["input"])))
    return sent


def test_deploy__killed_at_several_points__rerun_finishes_without_resending(tmp_path):
    r = start(tmp_path / "killed", 11155111)
    try:
        _, deploy, _ = _commands("sepolia")
        # Killed right after a deployment is broadcast, mid-wiring, and mid-handover.
        run_killed(r, deploy, "+ GovernanceTimelock at", delay=0.2)
        first = r.book("sepolia")
        run_killed(r, deploy, "RoyaltyRouter accepts credits from the LicenseManager", delay=0.5)
        run_killed(r, deploy, "deployer renounces PAUSER_ROLE", delay=0.0)
        out = r.bash(deploy)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "verified: every contract, wiring step and role matches" in out.stdout
        book = _check_chain(r, "sepolia")
        assert book["contracts"]["GovernanceTimelock"] == first["contracts"]["GovernanceTimelock"]
        assert book["block"] == first["block"] and not book["pending"]
        # No transaction was sent twice: each deployment, wiring call and role change is on the
        # chain once (a resent one would repeat its target and calldata), and the nonce counts them.
        sent = _sent_by(r, DEPLOYER)
        assert len(sent) == len(set(sent)) == r.nonce(), [s for s in sent if sent.count(s) > 1][:3]
    finally:
        r.stop()


def _grant_outside_handover(r, network: str) -> str:
    """Governance (the timelock, impersonated) grants PAUSER on the meter to a stranger."""
    book = r.book(network)
    timelock = book["contracts"]["GovernanceTimelock"]
    meter = r.contract("UsageMeter", book["contracts"]["UsageMeter"])
    stranger = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
    r.w3.provider.make_request("anvil_impersonateAccount", [timelock])
    r.w3.provider.make_request("anvil_setBalance", [timelock, hex(10**18)])
    tx = meter.functions.grantRole(meter.functions.PAUSER_ROLE().call(), stranger).transact({"from": timelock})
    r.w3.eth.wait_for_transaction_receipt(tx)
    return stranger


# --- bad input: one line, no traceback, nothing sent ---------------------------------------


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    r = start(tmp_path_factory.mktemp("bad-input"), 11155111)
    import_account(r.ape_data, "poor", UNFUNDED_KEY)
    # A contract without decimals(): code that just stops.
    r.w3.provider.make_request("anvil_setCode", ["0x000000000000000000000000000000000000dEaD", "0x00"])
    yield r
    r.stop()


BASE = (
    ".venv/bin/ape run deploy --network ethereum:sepolia:node --account deployer --yes "
    "--stake-token $STAKE_TOKEN --reward-token $USDC --proposer $SAFE --reporter $REPORTER_1"
)
CASES = {
    "missing-rpc-url": (BASE, {"SEPOLIA_RPC_URL": ""}, "SEPOLIA_RPC_URL is not set"),
    "unknown-alias": (BASE.replace("--account deployer", "--account nobody"), {}, "unknown account alias 'nobody'"),
    "dead-rpc": (BASE, {"SEPOLIA_RPC_URL": "http://127.0.0.1:9"}, "cannot connect to ethereum:sepolia:node"),
    "wrong-network": (BASE.replace("ethereum:sepolia:node", "ethereum:sepolai:node"), {}, "unknown network"),
    "wrong-chain-id": (
        BASE.replace("ethereum:sepolia:node", "ethereum:base-sepolia:node"),
        {},
        "serves chain 11155111, not 84532",
    ),
    "placeholder-admin": (
        BASE.replace("--proposer $SAFE", "--admin 0xTIMELOCK"),
        {},
        "--admin '0xTIMELOCK' is not an address (a placeholder",
    ),
    "eoa-admin": (BASE.replace("--proposer $SAFE", "--admin $SAFE"), {}, "is not a contract: use a timelock"),
    "no-proposer": (BASE.replace("--proposer $SAFE", ""), {}, "name at least one --proposer"),
    "test-tokens": (BASE + " --test-tokens", {}, "--test-tokens deploys mintable MockERC20s: refused off local"),
    "token-without-code": (
        BASE.replace("$STAKE_TOKEN", "0x000000000000000000000000000000000000bEEF"),
        {},
        "has no code on chain 11155111",
    ),
    "token-without-decimals": (
        BASE.replace("$USDC", "0x000000000000000000000000000000000000dEaD"),
        {},
        "does not answer decimals()",
    ),
    "no-passphrase": (BASE, {"APE_ACCOUNTS_deployer_PASSPHRASE": ""}, "set APE_ACCOUNTS_deployer_PASSPHRASE"),
    "wrong-passphrase": (BASE, {"APE_ACCOUNTS_deployer_PASSPHRASE": "nope"}, "does not unlock 'deployer'"),
    "no-yes-no-tty": (BASE.replace(" --yes", ""), {}, "pass --yes"),
    "balance-too-low": (BASE.replace("--account deployer", "--account poor"), {}, "fund it first (nothing was sent)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_deploy__bad_input__one_line_and_nothing_sent(rehearsal, case):
    command, env, message = CASES[case]
    for leftover in rehearsal.books.glob("*.json"):  # one failing case must not mask the next
        leftover.unlink()
    before = rehearsal.nonce()
    out = rehearsal.bash(command, timeout=180, **env)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], out.stdout + out.stderr
    assert rehearsal.nonce() == before
    assert not (rehearsal.books / "ethereum-sepolia.json").exists()


def test_verify__no_address_book__one_line(rehearsal):
    out = rehearsal.bash(".venv/bin/codexfield deploy verify --network ethereum:sepolia:node")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("Error: no address book at")


def test_artifacts_are_compiled():
    assert artifact("GovernanceTimelock")["abi"] and PASSPHRASE


def _runbook_commands() -> list[str]:
    text = (ROOT / "docs" / "operate.md").read_text()
    section = text.split("#### Deployer's runbook", 1)[1].split("\n### ", 1)[0]
    block = section.split("```console", 1)[1].split("```", 1)[0]
    return [line[2:].strip() for line in block.splitlines() if line.startswith("$ ")]


def test_operate_runbook__every_command_runs(tmp_path):
    """docs/operate.md's rehearsal block, command by command: anvil with the doc's flags (on a free
    port), the account import (key and passphrase on stdin), the exports (the rehearsal's values),
    then the dry run, the deploy and verify verbatim."""
    import os

    cmds = _runbook_commands()
    anvil, rpc, imp, passphrase, *rest = cmds
    assert anvil.startswith("anvil --chain-id 11155111 --block-time 1 --port 18545")
    assert rpc == "export SEPOLIA_RPC_URL=http://127.0.0.1:18545" and imp == "ape accounts import deployer"
    assert passphrase.startswith("export APE_ACCOUNTS_deployer_PASSPHRASE=")
    r = start(tmp_path, 11155111, accounts=False)
    try:
        import_account(r.ape_data, "deployer", DEPLOYER_KEY)  # = `ape accounts import deployer`
        path = f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"
        for cmd in rest:
            out = r.bash(cmd, PATH=path)
            assert out.returncode == 0, cmd + "\n" + out.stdout + out.stderr
        assert "verified: every contract, wiring step and role matches" in out.stdout
        _check_chain(r, "sepolia")
    finally:
        r.stop()
