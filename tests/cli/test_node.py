"""`codexfield node register|stake|unbond|withdraw|claim|status` on the deployed system."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def operator(accounts):
    return accounts[7]


@pytest.fixture(scope="module")
def funded(cf, operator):
    cdx = cf.test_token("CDX")
    min_stake = int(cf.staking.params().min_stake)
    cdx.mint(operator, 10 * min_stake, sender=operator)
    return min_stake


def _cdx(raw: int) -> str:
    from decimal import Decimal

    text = f"{Decimal(raw) / Decimal(10**18):f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " CDX"


def test_register__below_minimum_and_bad_service__refused_no_tx(cli, funded, operator, no_tx):
    with no_tx(operator):
        r = cli("node", "register", "--endpoint", "http://127.0.0.1:1", "--stake", "0.000001 CDX", account=operator)
    assert r.code == 1 and "below the minimum" in r.err and r.err.count("\n") == 1
    with no_tx(operator):
        r = cli("node", "register", "--endpoint", "http://x", "--services", "gpu", account=operator)
    assert r.code == 1 and "unknown service 'gpu'" in r.err


def test_register_stake_unbond_withdraw_claim(cli, cf, chain, funded, operator, no_tx):
    min_stake = funded
    r = cli(
        "node",
        "register",
        "--endpoint",
        "http://127.0.0.1:1",
        "--stake",
        _cdx(2 * min_stake),
        "--json",
        account=operator,
    )
    assert r.code == 0, r.err
    assert r.json["status"] == "active" and r.json["stake"] == _cdx(2 * min_stake)
    with no_tx(operator):
        r = cli("node", "register", "--endpoint", "http://x", account=operator)
    assert r.code == 1 and "already registered" in r.err
    r = cli("node", "stake", _cdx(min_stake), "--json", account=operator)
    assert r.code == 0, r.err
    assert r.json["stake"] == _cdx(3 * min_stake)
    with no_tx(operator):
        r = cli("node", "unbond", "1000 USDC", account=operator)
    assert r.code == 1 and "is in USDC, but this takes CDX" in r.err
    r = cli("node", "unbond", _cdx(min_stake), "--json", account=operator)
    assert r.code == 0, r.err
    st = cli("node", "status", operator.address, "--json")
    assert st.code == 0, st.err
    status = st.json
    assert status["unbonding"] == _cdx(min_stake) and status["thaw_end"] > chain.pending_timestamp
    with no_tx(operator):
        r = cli("node", "withdraw", account=operator)
    assert r.code == 1 and "still thawing until" in r.err
    with no_tx(operator):
        r = cli("node", "claim", account=operator)
    assert r.code == 1 and "no earnings in USDC and no rewards" in r.err
    human = cli("node", "status", operator.address)
    assert human.code == 0 and "thaw ends" in human.out
