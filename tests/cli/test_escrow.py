"""`codexfield escrow deposit|withdraw request|withdraw complete|balance` on the deployed system."""

from __future__ import annotations


def test_deposit_request_complete(cli, cf, chain, accounts, no_tx):
    payer = accounts[8]
    cf.test_token("USDC").mint(payer, cf.units("USDC", 20), sender=payer)
    with no_tx(payer):
        r = cli("escrow", "deposit", "25 USDC", account=payer)
    assert r.code == 1 and "holds 20 USDC, needs 25 USDC; fund the account first" in r.err
    with no_tx(payer):
        r = cli("escrow", "deposit", "10", account=payer)
    assert r.code == 1 and "write the amount with its token" in r.err
    r = cli("escrow", "deposit", "10.5 USDC", "--json", account=payer)
    assert r.code == 0, r.err
    assert r.json["escrow"] == "10.5 USDC" and r.json["withdrawal"] == "0 USDC"
    with no_tx(payer):
        r = cli("escrow", "withdraw", "request", "11 USDC", account=payer)
    assert r.code == 1 and "the escrow holds 10.5 USDC, less than 11 USDC" in r.err
    with no_tx(payer):
        r = cli("escrow", "withdraw", "complete", account=payer)
    assert r.code == 1 and "no withdrawal requested in USDC" in r.err
    r = cli("escrow", "withdraw", "request", "4 USDC", "--json", account=payer)
    assert r.code == 0, r.err
    thaw = r.json
    assert thaw["withdrawal"] == "4 USDC" and not thaw["ready"] and thaw["ready_at"] > chain.pending_timestamp
    with no_tx(payer):
        r = cli("escrow", "withdraw", "complete", account=payer)
    assert r.code == 1 and "thaws until" in r.err
    human = cli("escrow", "balance", payer.address)
    assert human.code == 0 and "withdrawal 4 USDC thaws until" in human.out
    chain.mine(timestamp=thaw["ready_at"] + 1)
    r = cli("escrow", "withdraw", "complete", "--json", account=payer)
    assert r.code == 0, r.err
    assert r.json["withdrawn"] == "4 USDC" and r.json["escrow"] == "6.5 USDC"
    b = cli("escrow", "balance", "--account", "TEST:8", "--json")
    assert b.code == 0 and b.json["escrow"] == "6.5 USDC", b.err
