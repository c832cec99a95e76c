"""The SDK facade end to end: examples/quickstart.py's steps against the deployed system."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from codexfield.constants import Reject
from codexfield.sdk import CodexField
from codexfield.sdk.metering import digest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
quickstart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quickstart)

FEE_BPS = 200  # DeployConfig default protocol fee


def test_quickstart__every_step__moves_exact_amounts(cf, creator, consumer, node, tmp_path):
    usdc = cf.token("USDC")
    router_before = usdc.balanceOf(cf.router)
    out = quickstart.run(cf, creator, consumer, node, tmp_path, say=lambda _m: None)
    upfront, price, node_price, mu = 10**6, 2000, 1000, 500
    license_part = mu * price
    fee = license_part * FEE_BPS // 10_000
    assert out["applied"] == 1 and out["replay_applied"] == 0
    assert out["claimed"] == upfront + license_part - fee  # no parents: all to the owner
    assert cf.settled(out["credential"], node) == (mu, 5, 0, 250)
    assert cf.escrow(consumer, "USDC") == 10 * 10**6 - mu * (price + node_price)
    assert cf.meter.node_balance(node, usdc) == mu * node_price - mu * node_price * FEE_BPS // 10_000
    assert usdc.balanceOf(cf.router) == router_before  # everything credited was claimed
    assert out["authorized"] == 1
    assert cf.capsule(out["dataset"])["owner"] == creator.address


def test_sdk__replayed_voucher__is_reported_nothing_new(cf, creator, consumer, node, tmp_path):
    out = quickstart.run(cf, creator, consumer, node, tmp_path, say=lambda _m: None)
    v = cf.voucher(out["credential"], node, mu=500, calls=5, latency_ms=250, node_price_per_mu=1000)
    res = cf.ingest([(v, cf.sign(v, consumer)), (v, cf.sign(v, consumer))], sender=node)
    assert res.applied == 0
    assert [r[2] for r in res.rejected] == [Reject.NOTHING_NEW, Reject.NOTHING_NEW]


def test_sdk__voucher_digest__equals_the_contract(cf, consumer, node):
    v = cf.voucher(7, node, mu=1, calls=1, payer=consumer)
    assert digest(v, cf.domain) == bytes(cf.meter.voucher_digest(v.as_tuple()))


def test_sdk__opens_from_an_address_book_file(cf, tmp_path):
    from codexfield import deployments

    path = deployments.save(cf.book, "ethereum", "local", directory=tmp_path)
    again = CodexField(str(path))
    assert again.meter.address == cf.meter.address
    assert again.units("USDC", "1.5") == 1_500_000
