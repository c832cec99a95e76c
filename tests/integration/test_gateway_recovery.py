"""Channel recovery (issue 15): node-signed acks, resume after every refusal path and lost
answer without a lower or conflicting voucher or a new credential; and a chaos run with real
SIGKILLs of the gateway and of consumer processes (30 consumers, loopback, bounded).

Invariants: zero stuck channels; the node is never unpaid (settled == accepted == what the
consumer's ledger signed); the consumer is never charged for a refused call (settled calls ==
the distinct answers it received; escrow spent == settled MU x price)."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from eth_account import Account

from codexfield.node.client import NodeClient, NodeError
from codexfield.node.gateway import voucher_json
from codexfield.node.model import mu_for
from codexfield.sdk.metering import ConsumerLedger, verify_ack

from operate_helpers import LICENSE_PRICE, NODE_PRICE, deposit, fresh_consumer, settled

TEXT = "my parcel is late, where is it?"
UNIT = LICENSE_PRICE + NODE_PRICE
HERE = Path(__file__).parent


def test_every_answer_carries_a_node_signed_ack(start_gateway, grid, node, consumer, tmp_path):
    server = start_gateway()
    ledger = ConsumerLedger(tmp_path / "l.sqlite", grid.domain, consumer.private_key)
    out = NodeClient(server.url, ledger).invoke(grid.credential, TEXT)
    assert verify_ack(
        grid.domain, out["ack"], node=node.address, credential_id=grid.credential, payer=consumer.address
    ) == ledger.counters(grid.credential, node.address)
    ch = requests.get(server.url + "/channel", params={"credential": grid.credential, "payer": consumer.address}).json()
    assert ch["ack"]["cumulative_calls"] == out["ack"]["cumulative_calls"] and ch["ack"]["signature"]
    forged = dict(ch["ack"], cumulative_calls="99")
    with pytest.raises(Exception, match="signed by"):
        verify_ack(grid.domain, forged, node=node.address, credential_id=grid.credential, payer=consumer.address)
    r = requests.get(server.url + "/channel", params={"credential": "x"})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"


def test_escrow_short__refused_uncharged__top_up_resumes_same_voucher(start_gateway, grid, node, admin, tmp_path):
    server = start_gateway()
    acct, cred = fresh_consumer(grid, admin, escrow=mu_for(TEXT) * UNIT)  # pays exactly one call
    ledger = ConsumerLedger(tmp_path / "short.sqlite", grid.domain, acct.key)
    client = NodeClient(server.url, ledger, settled=lambda c, n, p: settled(grid, n, c, p))
    client.invoke(cred, TEXT)
    with pytest.raises(NodeError) as e:
        client.invoke(cred, TEXT)
    assert (e.value.status, e.value.code) == (402, "escrow_short") and e.value.ack["code"] == "escrow_short"
    signed = ledger.counters(cred, node.address)
    with pytest.raises(NodeError, match="escrow_short"):
        client.invoke(cred, "another text")  # resume first: the same voucher again, nothing new signed
    assert ledger.counters(cred, node.address) == signed and server.gateway.served == 1
    deposit(grid, admin, acct.address, 10 * UNIT)
    out = client.invoke(cred, "reset my password")  # resumes the refused call, then the new one
    assert (
        client.recovered[-1]["cumulative"]["cumulative_calls"] == "2" and out["cumulative"]["cumulative_calls"] == "3"
    )
    assert ledger.inflight(cred, node.address) is None
    server.gateway.flush_now()
    assert settled(grid, node, cred, acct.address)[1] == 3 == server.gateway.served


def test_bad_signature__fix_the_key__resumes_same_counters(start_gateway, grid, node, admin, tmp_path):
    server = start_gateway()
    acct, cred = fresh_consumer(grid, admin, escrow=10**7)
    hot = Account.create()  # not (yet) a sigAuth delegate of acct
    path = tmp_path / "hot.sqlite"
    client = NodeClient(server.url, ConsumerLedger(path, grid.domain, hot.key, payer=acct.address))
    with pytest.raises(NodeError) as e:
        client.invoke(cred, TEXT)
    assert e.value.code == "bad_signature" and server.gateway.served == 0
    inflight = client.ledger.inflight(cred, node.address)
    # The holder's own key now signs: the SAME counters are re-signed, no new credential.
    client = NodeClient(server.url, ConsumerLedger(path, grid.domain, acct.key))
    out = client.invoke(cred, "the app crashes")
    assert client.recovered[0]["cumulative"]["cumulative_mu"] == str(inflight.voucher.cumulative_mu)
    assert out["cumulative"]["cumulative_calls"] == "2"
    server.gateway.flush_now()
    assert settled(grid, node, cred, acct.address)[:2] == (mu_for(TEXT) + mu_for("the app crashes"), 2)


def test_lost_answer__replayed_and_served_once(start_gateway, grid, node, admin, tmp_path):
    server = start_gateway()
    acct, cred = fresh_consumer(grid, admin, escrow=10**7)
    ledger = ConsumerLedger(tmp_path / "lost.sqlite", grid.domain, acct.key)
    client = NodeClient(server.url, ledger)
    q = client.quote(cred, payload=TEXT)
    f = _first_call(ledger, cred, node, q, deadline=q["min_deadline"] + 600)
    body = {
        "credential_id": str(cred),
        "input": TEXT,
        "voucher": voucher_json(f.voucher),
        "signature": "0x" + f.signature.hex(),
    }
    assert requests.post(server.url + "/invoke", json=body).status_code == 200  # answer "lost"
    out = client.invoke(cred, "reset my password")
    assert client.recovered[0]["replayed"] is True and out["cumulative"]["cumulative_calls"] == "2"
    assert server.gateway.served == 2 and server.gateway.replayed == 1
    server.gateway.flush_now()
    assert settled(grid, node, cred, acct.address)[1] == 2


def _first_call(ledger, cred, node, q, *, deadline):
    """The consumer's ledger records (signs) the channel's first call at the node's quote `q`."""
    return ledger.begin_call(
        cred,
        node.address,
        TEXT,
        base=(0, 0, 0, 0),
        mu=q["mu"],
        latency_ms=0,
        purpose=int(q["purpose"]),
        node_price_per_mu=int(q["node_price_per_mu"]),
        deadline=deadline,
        issued_at=q["chain_time"],
    )


def test_stale_inflight_voucher_is_resigned_with_the_same_counters(start_gateway, grid, node, admin, tmp_path):
    server = start_gateway()
    acct, cred = fresh_consumer(grid, admin, escrow=10**7)
    ledger = ConsumerLedger(tmp_path / "stale.sqlite", grid.domain, acct.key)
    q = NodeClient(server.url, ledger).quote(cred, payload=TEXT)
    _first_call(
        ledger, cred, node, q, deadline=q["chain_time"] + 5
    )  # crashed before sending; the deadline is now too close
    client = NodeClient(server.url, ledger)
    assert client.resume(cred)["cumulative"]["cumulative_mu"] == str(q["mu"])
    assert ledger.counters(cred, node.address) == (q["mu"], 1, 0, 0)


def test_node_lost_its_state_file__starts_from_the_chain(start_gateway, grid, node, admin, tmp_path):
    acct, cred = fresh_consumer(grid, admin, escrow=10**7)
    server = start_gateway(tmp_path / "a.sqlite")
    ledger = ConsumerLedger(tmp_path / "lost-node.sqlite", grid.domain, acct.key)
    NodeClient(server.url, ledger).invoke(cred, TEXT)
    server.gateway.flush_now()
    server.stop(flush=False)
    again = start_gateway(tmp_path / "b.sqlite")  # a new, empty state file
    out = NodeClient(again.url, ledger, settled=lambda c, n, p: settled(grid, n, c, p)).invoke(cred, TEXT)
    assert out["cumulative"]["cumulative_calls"] == "2"
    again.gateway.flush_now()
    assert settled(grid, node, cred, acct.address)[1] == 2


def test_ingest_transaction_fails__vouchers_stay_pending__paid_next_round(
    start_gateway, grid, node, admin, networks, tmp_path
):
    """A batch whose transaction fails as a whole (here out of gas) refused no voucher: the node
    keeps them pending and the next round pays them. (CI once saw a batch estimated before a
    state change and mined after it run out of gas; its vouchers were marked refused and the
    node was never paid for them.) Settlement itself is never paused, so out of gas and a
    wallet that cannot pay for gas are the failures this path meets."""
    server = start_gateway()
    gw = server.gateway
    payers = [fresh_consumer(grid, admin, escrow=10 * UNIT) for _ in range(2)]
    for acct, cred in payers:
        NodeClient(server.url, ConsumerLedger(tmp_path / f"{cred}.sqlite", grid.domain, acct.key)).invoke(cred, TEXT)
    network = networks.provider.network
    chosen = network.__dict__.get("gas_limit")
    network.__dict__["gas_limit"] = 120_000  # the operator's fixed limit, too low for this batch
    try:
        assert gw.flush_now() == 0  # mined and reverted: out of gas
    finally:
        if chosen is None:
            network.__dict__.pop("gas_limit", None)
        else:
            network.__dict__["gas_limit"] = chosen
    assert gw.ingest_retries == 1
    for acct, cred in payers:
        assert gw.store.channel(cred, acct.address)["status"] == "pending"
        assert settled(grid, node, cred, acct.address) == (0, 0, 0, 0)
    assert gw.flush_now() == 2  # the next round: estimated afresh, both paid
    for acct, cred in payers:
        assert settled(grid, node, cred, acct.address)[:2] == (mu_for(TEXT), 1)
        assert gw.store.channel(cred, acct.address)["status"] == "settled"


# ------------------------------------------------------------------ chaos: real SIGKILLs

N_CONSUMERS = 30
CALLS = 6
PROCS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(kind: str, cfg: dict, tmp: Path, tag: str) -> subprocess.Popen:
    path = tmp / f"{tag}.json"
    path.write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    log = open(tmp / f"{tag}.log", "a")
    return subprocess.Popen(
        [sys.executable, str(HERE / "gateway_procs.py"), kind, str(path)],
        cwd=os.getcwd(),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_up(url: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the gateway at {url} did not come up")


def test_chaos__sigkill_gateway_and_consumers__no_stuck_channel_exact_money(
    grid, node, admin, networks, accounts, tmp_path
):
    rng = random.Random(15)
    meter = grid.c["UsageMeter"]
    consumers = []
    for i in range(N_CONSUMERS):
        short = i % 10 == 0  # 3 consumers can pay only 2 calls until the test tops them up
        acct, cred = fresh_consumer(grid, admin, escrow=(2 * 2 if short else 10 * CALLS) * UNIT)
        consumers.append((cred, acct, short))
    start_escrow = {cred: int(meter.escrow(a.address, grid.usdc)) for cred, a, _ in consumers}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    gcfg = {
        "uri": networks.provider.uri,
        "contracts": {n: c.address for n, c in grid.c.items()},
        "capsule": grid.capsule,
        "node_index": [a.address for a in accounts].index(node.address),
        "state": str(tmp_path / "node.sqlite"),
        "port": port,
        "price": NODE_PRICE,
        "max_age_s": 1.0,
    }
    gw = _spawn("gateway", gcfg, tmp_path, "gateway")
    procs: dict[int, subprocess.Popen] = {}
    ccfgs = []
    for p in range(PROCS):
        mine = consumers[p::PROCS]
        ccfgs.append(
            {
                "url": url,
                "chain_id": grid.domain.chain_id,
                "meter": grid.domain.verifying_contract,
                "ledger_dir": str(tmp_path),
                "results": str(tmp_path / f"results-{p}.jsonl"),
                "calls": CALLS,
                "consumers": [(c, a.key.hex()) for c, a, _ in mine],
            }
        )
    kills = {"gateway": 0, "consumer": 0}
    try:
        _wait_up(url, 90)
        for p in range(PROCS):
            procs[p] = _spawn("consumer", ccfgs[p], tmp_path, f"consumer-{p}")
        deadline = time.monotonic() + 150
        for step in range(6):  # bounded chaos: random SIGKILLs while the consumers run
            time.sleep(rng.uniform(0.5, 2.0))
            if step % 2 == 0:
                gw.send_signal(signal.SIGKILL)
                gw.wait()
                kills["gateway"] += 1
                gw = _spawn("gateway", gcfg, tmp_path, "gateway")
                _wait_up(url, 90)
            else:
                p = rng.randrange(PROCS)
                if procs[p].poll() is None:
                    procs[p].send_signal(signal.SIGKILL)
                    procs[p].wait()
                    kills["consumer"] += 1
                procs[p] = _spawn("consumer", ccfgs[p], tmp_path, f"consumer-{p}")
        shorts = {cred for cred, _, short in consumers if short}
        while time.monotonic() < deadline:  # the short consumers are refused (402) until topped up
            seen = {
                json.loads(x)["credential"]
                for p in range(PROCS)
                if (tmp_path / f"results-{p}.jsonl").exists()
                for x in (tmp_path / f"results-{p}.jsonl").read_text().splitlines()
                if "escrow_short" in x
            }
            if shorts <= seen:
                break
            time.sleep(0.5)
        for _cred, a, short in consumers:
            if short:
                deposit(grid, admin, a.address, 10 * CALLS * UNIT)
        for p in range(PROCS):
            left = max(1.0, deadline - time.monotonic())
            procs[p].wait(timeout=left)
            assert procs[p].returncode == 0, (tmp_path / f"consumer-{p}.log").read_text()[-2000:]
    finally:
        for pr in [gw, *procs.values()]:
            if pr.poll() is None:
                pr.send_signal(signal.SIGKILL)
                pr.wait()
    assert kills["gateway"] == 3 and kills["consumer"] >= 1
    # The last gateway was SIGKILLed too: a fresh one on the same file settles what it accepted.
    from codexfield.node.gateway import Gateway
    from codexfield.node.store import NodeStore

    final = Gateway(
        capsule_id=grid.capsule,
        model=grid.model,
        account=node,
        contracts=grid.c,
        store=NodeStore(tmp_path / "node.sqlite"),
        price_per_mu=NODE_PRICE,
    )
    final.flush_now()
    lines = [json.loads(x) for p in range(PROCS) for x in (tmp_path / f"results-{p}.jsonl").read_text().splitlines()]
    assert not [x for x in lines if "stuck" in x], "stuck channels"
    refused = {x["refused"] for x in lines if "refused" in x}
    assert "escrow_short" in refused
    for cred, acct, _ in consumers:
        ledger = ConsumerLedger(tmp_path / f"{cred}.sqlite", grid.domain, acct.key)
        signed = ledger.counters(cred, node.address)
        paid = settled(grid, node, cred, acct.address)
        answers = {int(x["calls"]) for x in lines if x.get("credential") == cred and "calls" in x}
        assert ledger.inflight(cred, node.address) is None
        # node paid for all it accepted
        assert paid == signed == final.store.previous(cred, acct.address), _why(tmp_path, final, cred, acct)
        assert paid[1] == CALLS and answers == set(range(1, CALLS + 1)), cred  # charged only for answered calls
        topup = 10 * CALLS * UNIT if _short(consumers, cred) else 0
        spent = start_escrow[cred] + topup - int(meter.escrow(acct.address, grid.usdc))
        assert spent == paid[0] * UNIT, cred
    print(
        f"chaos: {N_CONSUMERS} consumers x {CALLS} calls, kills {kills}, refusals {sorted(refused)}, "
        f"replays {sum(1 for x in lines if x.get('replayed'))}"
    )


def _why(tmp: Path, gateway, cred: int, acct) -> str:
    """What the node's store and the gateways' logs say of a channel (the failure message)."""
    logs = [
        x.strip()[:300]
        for x in (tmp / "gateway.log").read_text(errors="replace").splitlines()
        if x.startswith("{") and ('"ingest' in x or '"tx_' in x or "reject" in x or "intent" in x)
    ]
    return f"credential {cred}: store {gateway.store.channel(cred, acct.address)}; node log tail {logs[-25:]}"


def _short(consumers, cred) -> bool:
    return any(c == cred and s for c, _, s in consumers)
