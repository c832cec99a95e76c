"""The node gateway's request-size and number validation over real HTTP: numbers outside their
EIP-712 types answer 400 (not 500), a body over the limit answers 413 (not 400); nothing is
served."""

from __future__ import annotations

import pytest
import requests

from codexfield.node.gateway import MAX_BODY_BYTES, voucher_json
from codexfield.sdk.metering import Voucher

TEXT = "my parcel is late, where is it?"


def _voucher(grid, node, **over) -> dict:
    v = Voucher(
        credential_id=grid.credential,
        node=node.address,
        payer=node.address,
        purpose=1,
        cumulative_mu=1,
        cumulative_calls=1,
        cumulative_failures=0,
        cumulative_latency_ms=0,
        node_price_per_mu=1,
        issued_at=2**32,
        deadline=2**40,
    )
    return {**voucher_json(v), **{k: str(x) for k, x in over.items()}}


@pytest.mark.parametrize(
    "field, value",
    [
        ("credential_id", 2**256),
        ("purpose", 2**256),
        ("cumulative_mu", 2**256),
        ("cumulative_calls", 2**64),
        ("cumulative_failures", 2**64),
        ("cumulative_latency_ms", 2**64),
        ("node_price_per_mu", 2**256),
        ("deadline", 2**64),
        ("issued_at", 2**64),
        ("cumulative_mu", -1),
    ],
)
def test_invoke__voucher_number_out_of_range__400(start_gateway, grid, node, field, value):
    server = start_gateway()
    body = {"input": TEXT, "voucher": _voucher(grid, node, **{field: value}), "signature": "0x" + "11" * 65}
    if field == "credential_id":
        body["credential_id"] = str(value)
    r = requests.post(server.url + "/invoke", json=body, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "bad_request" and field in r.json()["message"], r.text
    assert server.gateway.served == 0


@pytest.mark.parametrize("params", [{"credential": 2**256}, {"credential": -1}, {"credential": 1, "purpose": 2**256}])
def test_quote__number_out_of_range__400(start_gateway, grid, params):
    server = start_gateway()
    r = requests.get(server.url + "/quote", params=params, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "bad_request" and "2^256" in r.json()["message"]


def test_invoke__body_over_the_limit__413(start_gateway, grid, node):
    server = start_gateway()
    body = {"input": "x" * 70_000, "voucher": _voucher(grid, node), "signature": "0x" + "11" * 65}
    r = requests.post(server.url + "/invoke", json=body, timeout=10)
    assert r.status_code == 413 and r.json()["error"] == "input_too_long" and str(MAX_BODY_BYTES) in r.json()["message"]
    assert server.gateway.served == 0
