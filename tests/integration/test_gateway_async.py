"""The gateway's async hot path and its event-fed escrow cache, over real HTTP on anvil.

- Copies of one channel's next voucher sent at once are served once: the channel's lock on the
  event loop orders them (one accepted, the rest re-served as replays or refused), never charged
  twice.
- The escrow cache follows the meter's events, not a timer: a consumer who spends the same
  escrow through another node is refused here (`402 escrow_short`) as soon as that node's
  settlement is mined and polled, instead of being served and leaving this node unpaid.
"""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from codexfield import scopes
from codexfield.node.client import NodeClient, NodeError
from codexfield.node.gateway import voucher_json
from codexfield.sdk.metering import ConsumerLedger

from operate_helpers import LICENSE_PRICE, NODE_PRICE, fresh_consumer, next_voucher

TEXT = "my parcel is late, where is it?"  # 1 MU
UNIT = LICENSE_PRICE + NODE_PRICE


def test_one_channel__concurrent_copies_of_the_next_voucher__served_once(start_gateway, grid, admin, tmp_path):
    acct, cred = fresh_consumer(grid, admin, 10 * UNIT)
    server = start_gateway()
    ledger = ConsumerLedger(tmp_path / "ledger.sqlite", grid.domain, acct.key)
    v, sig = next_voucher(server.url, ledger, cred, TEXT)
    body = {"credential_id": str(cred), "input": TEXT, "voucher": voucher_json(v), "signature": "0x" + sig.hex()}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: requests.post(server.url + "/invoke", json=body, timeout=10), range(8)))
    ok = [a.json() for a in answers if a.status_code == 200]
    assert all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
    assert [a["replayed"] for a in ok].count(False) == 1  # accepted once; the others re-served or refused
    assert server.gateway.served == 1
    assert server.gateway.store.previous(cred, acct.address) == v.counters()
    assert {a["cumulative"]["cumulative_calls"] for a in ok} == {"1"}
    assert server.gateway.flush_now() == 1


def _other_node(grid, admin, accounts):
    """A second registered node, to spend the consumer's escrow elsewhere."""
    staking = grid.c["AccessStaking"]
    stake = int(staking.params().min_stake)
    other = accounts.generate_test_account()
    admin.transfer(other, 10**18)
    grid.cdx.mint(other, stake, sender=admin)
    grid.cdx.approve(staking, stake, sender=other)
    staking.register_node("http://127.0.0.1:1", 1, b"local\x00\x00\x00", "0x" + "00" * 20, stake, sender=other)
    return other


def test_escrow_spent_through_another_node__the_watcher_drops_the_cache__refused_not_unpaid(
    start_gateway, grid, admin, accounts, chain, tmp_path
):
    meter = grid.c["UsageMeter"]
    acct, cred = fresh_consumer(grid, admin, 4 * UNIT)  # 4 calls of 1 MU
    server = start_gateway(escrow_ttl_s=3_600)  # a timed cache alone would trust the old escrow for an hour
    gw = server.gateway
    gw.watch_once()  # the watcher's first poll (the thread does this every 0.25 s; here by hand)
    client = NodeClient(server.url, ConsumerLedger(tmp_path / "here.sqlite", grid.domain, acct.key))
    client.invoke(cred, TEXT)  # 1 UNIT accepted here, not settled yet
    token = grid.usdc.address
    assert gw._escrow_cached(acct.address, token) == 4 * UNIT

    # The consumer spends 3 UNIT of the same escrow through another node, which settles at once.
    other = _other_node(grid, admin, accounts)
    now = int(chain.blocks.head.timestamp)
    v, sig = ConsumerLedger(tmp_path / "there.sqlite", grid.domain, acct.key).next_voucher(
        cred,
        other.address,
        mu=3,
        purpose=scopes.mask_of(["inference"]),
        node_price_per_mu=NODE_PRICE,
        deadline=now + 3_600,
        issued_at=now,
    )
    meter.ingest([v.as_tuple()], [sig], sender=other)
    assert int(meter.escrow(acct.address, token)) == UNIT  # what is left: this node's 1 unsettled call

    assert gw.watch_once() >= 1  # the other node's UsageRecorded names the payer: its entry is dropped
    assert gw._escrow_cached(acct.address, token) is None
    with pytest.raises(NodeError) as e:  # 2 UNIT owed here against 1 UNIT left: refused, never served
        client.invoke(cred, TEXT)
    assert e.value.code == "escrow_short" and gw.served == 1
    assert gw.flush_now() == 1  # the call served here is paid in full
    assert int(meter.escrow(acct.address, token)) == 0

    # A deposit is seen at the next poll too (no timer): the refused call resumes, same voucher.
    grid.usdc.mint(admin, 5 * UNIT, sender=admin)
    grid.usdc.approve(meter, 5 * UNIT, sender=admin)
    meter.deposit(grid.usdc, 5 * UNIT, acct.address, sender=admin)
    gw.watch_once()
    assert gw._escrow_cached(acct.address, token) is None
    out = client.invoke(cred, "reset my password")  # resumes the refused call first, then this one
    assert out["cumulative"]["cumulative_calls"] == "3" and gw.served == 3


def test_one_payer_two_channels_at_once__escrow_counted_once__one_refused(start_gateway, grid, admin, tmp_path):
    acct, cred_a = fresh_consumer(grid, admin, 2 * UNIT)  # room for 2 calls in all
    cred_b = int(grid.c["LicenseManager"].purchase(grid.terms_id, acct.address, 0, sender=admin).return_value)
    server = start_gateway()
    ledger = ConsumerLedger(tmp_path / "ledger.sqlite", grid.domain, acct.key)
    clients = {c: NodeClient(server.url, ledger) for c in (cred_a, cred_b)}
    clients[cred_a].invoke(cred_a, TEXT)  # 1 UNIT owed, not settled
    clients[cred_b].quote(cred_b, len(TEXT))  # channel B known: both calls below take the no-wait path

    def call(cred):
        try:
            return clients[cred].invoke(cred, TEXT)["cumulative"]["cumulative_calls"]
        except NodeError as e:
            return e.code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        got = sorted(pool.map(call, (cred_a, cred_b)))
    assert got in (["1", "escrow_short"], ["2", "escrow_short"]), got  # the last UNIT is counted once
    assert server.gateway.served == 2 and server.gateway._reserved == {}
    server.gateway.flush_now()
    settled = [int(grid.c["UsageMeter"].settled(c, server.gateway.address, acct.address)[1]) for c in (cred_a, cred_b)]
    assert sum(settled) == 2  # both served calls are paid: the node is never unpaid
    assert int(grid.c["UsageMeter"].escrow(acct.address, grid.usdc.address)) == 0


def test_restarted_node_counts_the_unsettled_usage_it_finds_in_its_store(start_gateway, grid, admin, tmp_path):
    acct, cred = fresh_consumer(grid, admin, 2 * UNIT)  # room for 2 calls
    state = tmp_path / "node.sqlite"
    first = start_gateway(state=state)
    client = NodeClient(first.url, ConsumerLedger(tmp_path / "ledger.sqlite", grid.domain, acct.key))
    client.invoke(cred, TEXT)
    client.invoke(cred, TEXT)  # 2 UNIT accepted, none settled
    first.stop(flush=False)  # a crash: the accepted vouchers are in the store only
    again = start_gateway(state=state)
    again.gateway.watch_once()
    client.url = again.url
    with pytest.raises(NodeError) as e:  # the escrow is all owed to this node already
        client.invoke(cred, TEXT)
    assert e.value.code == "escrow_short" and again.gateway.served == 0
    assert again.gateway.flush_now() == 1  # the earlier run's calls are paid in full
    assert int(grid.c["UsageMeter"].settled(cred, again.gateway.address, acct.address)[1]) == 2


def test_credentials_aging_together__read_again_by_one_refresher__same_fields_as_ape(
    start_gateway, grid, admin, tmp_path, monkeypatch
):
    """Credentials accepted together reach their TTL together. Each refresh used to start its own
    thread of ape calls (~40 ms of GIL each): a few dozen at once stalled the event loop for about
    a second. One refresher thread now reads them again, over raw JSON-RPC, one after another,
    and gets what ape reads."""
    import threading
    import time

    lm = grid.c["LicenseManager"]
    server = start_gateway(credential_ttl_s=2.0)  # accepted credentials age past the TTL at once
    gw = server.gateway
    consumers = [fresh_consumer(grid, admin, 4 * UNIT) for _ in range(12)]
    clients = [
        (NodeClient(server.url, ConsumerLedger(tmp_path / f"c{i}.sqlite", grid.domain, a.key)), cred)
        for i, (a, cred) in enumerate(consumers)
    ]
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:  # accepted together
        list(pool.map(lambda cc: cc[0].invoke(cc[1], TEXT), clients))
    first = {cred: gw._creds[(cred, scopes.mask_of(["inference"]))].checked_at for _, cred in clients}
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread):  # the threads the gateway starts from here on, by name
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    time.sleep(2.1)  # past the TTL, within 2 x TTL: served from the cache, read again in the background
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:  # and due together
        list(pool.map(lambda cc: cc[0].invoke(cc[1], TEXT), clients))
    deadline = time.monotonic() + 10
    while gw._refreshing and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.count("credential-refresh") == 1  # one refresher, whatever the number of credentials due
    for acct, cred in consumers:
        info = gw._creds[(cred, scopes.mask_of(["inference"]))]
        assert info.checked_at > first[cred]  # read again
        terms = lm.terms(lm.credential(cred).terms_id)
        assert (info.ok, info.holder, info.capsule_id, info.price_per_mu, info.token) == (
            True,
            acct.address,
            int(terms.capsule_id),
            int(terms.price_per_mu),
            str(terms.payment_token),
        )
    assert gw.flush_now() == 12
