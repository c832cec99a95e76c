"""The node gateway over real HTTP: exact next vouchers are served and ingested; missing,
stale, replayed, under-paying and wrongly signed vouchers get a clear 4xx and are NOT served;
a restart loses nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests
from eth_account import Account

from codexfield.node.client import ChannelOutOfSync, NodeClient, NodeError
from codexfield.node.gateway import voucher_json
from codexfield.node.model import mu_for
from codexfield.sdk.metering import ConsumerLedger, sign_voucher

from operate_helpers import LICENSE_PRICE, NODE_PRICE, next_voucher

TEXT = "my parcel is late, where is it?"


@pytest.fixture
def ledger(grid, consumer, tmp_path):
    return ConsumerLedger(tmp_path / "ledger.sqlite", grid.domain, consumer.private_key)


def _next(server, grid, ledger, text=TEXT, **over):
    """Quote and sign the exact next voucher (then apply `over` to it, re-signed by the consumer key)."""
    v, sig = next_voucher(server.url, ledger, grid.credential, text)
    if over:
        v = replace(v, **over)
        sig = sign_voucher(v, grid.domain, ledger._key)
    return v, sig


def _post(server, grid, v, sig, text=TEXT):
    body = {"credential_id": str(grid.credential), "input": text}
    if v is not None:
        body["voucher"] = voucher_json(v)
    if sig is not None:
        body["signature"] = "0x" + sig.hex()
    return requests.post(server.url + "/invoke", json=body, timeout=10)


def test_health_and_quote(start_gateway, grid, node):
    server = start_gateway()
    h = requests.get(server.url + "/health").json()
    assert (h["status"], h["node"], h["capsule"]) == ("ok", node.address, grid.capsule)
    q = requests.get(server.url + "/quote", params={"credential": grid.credential, "input_len": 250}).json()
    assert q["mu"] == mu_for(250) == 3 and q["credential_ok"]
    assert int(q["license_price_per_mu"]) == LICENSE_PRICE and int(q["node_price_per_mu"]) == NODE_PRICE
    assert q["previous"]["cumulative_calls"] == "0" and q["next"]["cumulative_mu"] == "3"


def test_invoke__client_calls_are_served_then_ingested_exactly(start_gateway, grid, node, consumer, ledger):
    server = start_gateway()
    client = NodeClient(server.url, ledger)
    outs = [client.invoke(grid.credential, t) for t in (TEXT, "refund my invoice " * 8, "reset my password")]
    assert [o["result"]["label"] for o in outs] == ["shipping", "billing", "account"]
    mu = sum(mu_for(t) for t in (TEXT, "refund my invoice " * 8, "reset my password"))
    meter = grid.c["UsageMeter"]
    escrow = meter.escrow(consumer, grid.usdc)
    assert server.gateway.flush_now() == 1  # one channel, one voucher settles all three calls
    assert list(meter.settled(grid.credential, node, consumer))[:3] == [mu, 3, 0]
    assert escrow - meter.escrow(consumer, grid.usdc) == mu * (LICENSE_PRICE + NODE_PRICE)


def test_invoke__missing_voucher__400_and_not_served(start_gateway, grid, ledger):
    server = start_gateway()
    r = _post(server, grid, None, None)
    assert r.status_code == 400 and r.json()["error"] == "missing_voucher" and "quote" in r.json()["message"]
    assert "result" not in r.json() and server.gateway.served == 0


def test_invoke__wrong_signer__401_and_not_served(start_gateway, grid, ledger, stranger):
    server = start_gateway()
    v, _ = _next(server, grid, ledger)
    r = _post(server, grid, v, sign_voucher(v, grid.domain, stranger.private_key))
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"
    assert server.gateway.served == 0 and server.gateway.store.previous(grid.credential, v.payer) == (0, 0, 0, 0)


def test_invoke__replayed_or_stale__409_and_not_served(start_gateway, grid, ledger):
    server = start_gateway()
    v, sig = _next(server, grid, ledger)
    assert _post(server, grid, v, sig).status_code == 200
    r = _post(server, grid, v, sig)  # the same voucher and input again: a lost answer, re-served, not charged
    assert r.status_code == 200 and r.json()["replayed"] is True and server.gateway.served == 1
    r = _post(server, grid, v, sig, text="another input")  # the same voucher for another call
    assert r.status_code == 409 and r.json()["error"] == "replayed"
    v2, sig2 = _next(server, grid, ledger)
    assert _post(server, grid, v2, sig2).status_code == 200
    r = _post(server, grid, v, sig)  # an older one
    assert r.status_code == 409 and r.json()["error"] in ("replayed", "stale")
    assert server.gateway.served == 2


def test_invoke__under_paying__402_and_not_served(start_gateway, grid, ledger):
    server = start_gateway()
    v, sig = _next(server, grid, ledger, node_price_per_mu=NODE_PRICE - 1)
    r = _post(server, grid, v, sig)
    assert r.status_code == 402 and r.json()["error"] == "underpaid"
    long_text = "x" * 350  # 4 MU; the voucher below pays 1
    v, sig = _next(server, grid, ledger, text="short")
    r = _post(server, grid, v, sig, text=long_text)
    assert r.status_code == 402 and "4 MU" in r.json()["message"]
    assert server.gateway.served == 0


def test_invoke__not_exactly_next__422_and_deadline__400(start_gateway, grid, ledger):
    server = start_gateway()
    v, sig = _next(server, grid, ledger)
    bad = replace(v, cumulative_calls=v.cumulative_calls + 1)
    r = _post(server, grid, bad, sign_voucher(bad, grid.domain, ledger._key))
    assert r.status_code == 422 and r.json()["error"] == "wrong_counters"
    soon = replace(v, deadline=v.deadline - 10_000)
    r = _post(server, grid, soon, sign_voucher(soon, grid.domain, ledger._key))
    assert r.status_code == 400 and r.json()["error"] == "deadline"
    assert server.gateway.served == 0


def test_invoke__unknown_credential__403(start_gateway, grid, ledger):
    server = start_gateway()
    v, sig = _next(server, grid, ledger)
    other = replace(v, credential_id=10_000)
    body = {
        "credential_id": "10000",
        "input": TEXT,
        "voucher": voucher_json(other),
        "signature": "0x" + sign_voucher(other, grid.domain, ledger._key).hex(),
    }
    r = requests.post(server.url + "/invoke", json=body)
    assert r.status_code == 403 and r.json()["error"] == "credential_refused"


def test_invoke__sigauth_hot_key_is_accepted(start_gateway, grid, consumer, tmp_path):
    server = start_gateway()
    hot = Account.create()
    grid.c["IdentityRegistry"].addDelegate(consumer, b"sigAuth".ljust(32, b"\0"), hot.address, 86_400, sender=consumer)
    client = NodeClient(
        server.url, ConsumerLedger(tmp_path / "hot.sqlite", grid.domain, hot.key, payer=consumer.address)
    )
    assert client.invoke(grid.credential, "the app crashes")["result"]["label"] == "technical"
    assert server.gateway.flush_now() == 1


def test_restart__accepted_vouchers_survive_and_are_ingested(start_gateway, grid, node, consumer, ledger, tmp_path):
    state = tmp_path / "restart.sqlite"
    server = start_gateway(state)
    client = NodeClient(server.url, ledger)
    for _ in range(2):
        client.invoke(grid.credential, TEXT)
    server.stop(flush=False)  # killed before any ingest
    assert list(grid.c["UsageMeter"].settled(grid.credential, node, consumer))[1] == 0
    again = start_gateway(state)
    q = requests.get(again.url + "/quote", params={"credential": grid.credential, "input_len": 5}).json()
    assert q["previous"]["cumulative_calls"] == "2"
    client.url = again.url
    client.invoke(grid.credential, TEXT)
    assert again.gateway.flush_now() == 1
    assert list(grid.c["UsageMeter"].settled(grid.credential, node, consumer))[:3] == [3 * mu_for(TEXT), 3, 0]


def test_client__ledger_ahead_of_node__refuses_to_sign(start_gateway, grid, ledger):
    server = start_gateway()
    _next(server, grid, ledger)  # signed, never delivered (a lost request)
    with pytest.raises(ChannelOutOfSync):
        NodeClient(server.url, ledger).invoke(grid.credential, TEXT)
    with pytest.raises(NodeError):
        NodeClient(server.url, ledger).quote(grid.credential, 10**6)


def test_cli__invoke_and_keeper_once(grid, start_gateway, consumer, admin, accounts, networks, monkeypatch, tmp_path):
    import json

    from click.testing import CliRunner

    from codexfield import deployments
    from codexfield.cli.gateway import invoke_command
    from codexfield.cli.keeper import keeper_group

    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", grid.book.path.parent)
    server = start_gateway()
    p = networks.provider
    choice = f"{p.network.ecosystem.name}:{p.network.name}:{p.name}"
    idx = [a.address for a in accounts].index(consumer.address)
    args = [
        "--credential",
        str(grid.credential),
        "--node",
        server.url,
        "--network",
        choice,
        "--account",
        f"TEST::{idx}",
        "--ledger",
        str(tmp_path / "cli-ledger.sqlite"),
    ]
    out = CliRunner().invoke(invoke_command, ["--capsule", str(grid.capsule), *args, "the app crashes"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["result"]["label"] == "technical"
    out = CliRunner().invoke(invoke_command, ["--capsule", str(grid.capsule + 99), *args, "the app crashes"])
    assert out.exit_code == 1 and f"serves capsule {grid.capsule}" in out.output
    admin_idx = [a.address for a in accounts].index(admin.address)
    out = CliRunner().invoke(
        keeper_group,
        [
            "finalizer",
            "--network",
            choice,
            "--account",
            f"TEST::{admin_idx}",
            "--state",
            str(tmp_path / "fin.sqlite"),
            "--once",
        ],
    )
    assert out.exit_code == 0, out.output


class Outage(ConnectionError):
    """A transient RPC failure (what `is_transient` retries) outlasting the sender's retries."""


def test_ingest__rpc_outage__batch_kept_not_refused_then_settled(start_gateway, grid, node, consumer, ledger):
    """An outage while ingesting is not the meter refusing: the channel is not marked rejected,
    the batch stays first in line, and the next round settles every call served (node paid)."""
    server = start_gateway()
    gw = server.gateway
    client = NodeClient(server.url, ledger)
    for _ in range(2):
        client.invoke(grid.credential, TEXT)
    meter = grid.c["UsageMeter"]

    def down(_intent: str) -> None:
        raise Outage("connection refused")

    gw.sender.hooks = {"after_intent": down}
    assert gw.flush_now() == 0
    assert gw.store.channel(grid.credential, consumer.address)["status"] != "rejected"
    assert list(meter.settled(grid.credential, node, consumer))[1] == 0
    client.invoke(grid.credential, TEXT)  # served meanwhile: queued behind the held batch
    gw.sender.hooks = {}
    assert gw.flush_now() >= 1
    assert list(meter.settled(grid.credential, node, consumer))[:3] == [3 * mu_for(TEXT), 3, 0]
    assert gw.store.channel(grid.credential, consumer.address)["status"] == "settled"
