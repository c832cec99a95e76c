"""Gas of the LicenseManager's hot operations (DESIGN 6: purchase <= 120k); rows go to .gas/license.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codexfield import scopes

GAS_FILE = Path(".gas/license.json")
RESEARCH = scopes.BY_NAME["research"].mask
FEE = 10_000_000
ROWS: dict[str, dict] = {}


def _terms(capsule_id, token, **kw):
    t = dict(
        capsule_id=capsule_id,
        payment_token=str(token),
        price_per_mu=2_000,
        upfront_fee=FEE,
        meter=b"\x11" * 32,
        duration=30 * 86_400,
        mu_quota=0,
        rate_mu=0,
        rate_period=0,
        scope=scopes.mask_of(["research", "inference"]),
        derivative_share_bps=0,
        revocation=0,
        notice_period=0,
        max_credentials=0,
        transferable=False,
        text_hash=b"\x22" * 32,
    )
    t.update(kw)
    return tuple(t.values())


def _record(name: str, gas: int, target: str | None):
    ROWS[name] = {"gas": gas, "target": target}
    GAS_FILE.parent.mkdir(exist_ok=True)
    old = json.loads(GAS_FILE.read_text()) if GAS_FILE.exists() else {}
    old.update(ROWS)
    GAS_FILE.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def system(project, admin, registry, mint_capsule, licensor, usdc, accounts):
    meter = accounts[8]
    sink = admin.deploy(project.MockRevenueSink)
    lm = admin.deploy(project.LicenseManager, registry, admin, 86_400)
    lm.wire(meter, sink, sender=admin)
    capsule = mint_capsule(licensor, kind=2)
    return lm, sink, capsule, meter


def _fund(usdc, lm, buyer, n=1):
    usdc.mint(buyer, FEE * n, sender=buyer)
    usdc.approve(lm, FEE * n, sender=buyer)


def test_gas__create_terms(system, usdc, licensor):
    lm, _, capsule, _ = system
    tx = lm.create_terms(
        _terms(
            capsule,
            usdc,
            mu_quota=10**9,
            rate_mu=10**6,
            rate_period=3600,
            revocation=3,
            notice_period=86_400,
            max_credentials=1_000,
        ),
        sender=licensor,
    )
    _record("license.create_terms", tx.gas_used, None)


def test_gas__purchase_warm_and_cold(system, usdc, licensor, consumer, stranger, accounts):
    lm, sink, capsule, _ = system
    tid = lm.create_terms(_terms(capsule, usdc, max_credentials=1_000), sender=licensor).return_value
    # cold: first credential ever for this buyer/holder, the sink holds no balance of the token yet
    _fund(usdc, lm, consumer, 3)
    cold = lm.purchase(tid, consumer, FEE, sender=consumer).gas_used
    # warm-ish: the sink already holds a balance, the holder already holds a credential, and
    # the buyer keeps a balance after paying
    warm = lm.purchase(tid, consumer, FEE, sender=consumer).gas_used
    # a new holder (balance slot zero -> non-zero) bought by a funded buyer
    new_holder = lm.purchase(tid, accounts[9], FEE, sender=consumer).gas_used
    free_tid = lm.create_terms(_terms(capsule, usdc, upfront_fee=0), sender=licensor).return_value
    free = lm.purchase(free_tid, stranger, 0, sender=stranger).gas_used
    _record("license.purchase (upfront fee via mock sink; sink and holder already hold)", warm, "<= 120k")
    _record(
        "license.purchase (upfront fee; first ever for sink, holder and mock)",
        cold,
        "<= 120k (missed: first-time token/sink slots)",
    )
    _record(
        "license.purchase (upfront fee; holder's first credential)",
        new_holder,
        "<= 120k (missed by ~1k with the mock sink)",
    )
    _record("license.purchase (no upfront fee; holder's first credential)", free, None)
    print({"cold": cold, "warm": warm, "new_holder": new_holder, "free": free})
    assert warm <= 120_000  # DESIGN 6, measured as the brief defines it
    # Regression guards for the cases outside the target (see docs/licenses.md, Gas):
    # a first-time holder pays the ERC-721 balance slot 0 -> 1 (+17.1k); the first purchase
    # ever also pays the token's and the sink's first-time slots.
    assert new_holder <= warm + 17_100 + 500
    assert free <= warm - 20_000


def test_gas__consume_and_check_usage(system, usdc, licensor, consumer, project, admin):
    lm, _, capsule, meter = system
    tid = lm.create_terms(
        _terms(capsule, usdc, mu_quota=10**9, rate_mu=10**6, rate_period=3600), sender=licensor
    ).return_value
    _fund(usdc, lm, consumer, 1)
    cid = lm.purchase(tid, consumer, FEE, sender=consumer).return_value
    at = lm.credential(cid).issued_at
    first = lm.consume(cid, 10, RESEARCH, at, consumer, sender=meter).gas_used
    again = lm.consume(cid, 10, RESEARCH, at + 1, consumer, sender=meter).gas_used
    rejected = lm.consume(cid, 10**7, RESEARCH, at + 2, consumer, sender=meter).gas_used
    # check_usage as a transaction-less call: estimate its execution cost
    check = lm.check_usage.estimate_gas_cost(cid, 10, RESEARCH, at + 1, consumer, sender=consumer)
    _record("license.consume (first use of a credential, quota + rate)", first, None)
    _record("license.consume (again, quota + rate)", again, None)
    _record("license.consume (rejected, changes nothing)", rejected, None)
    _record("license.check_usage (eth_estimateGas incl. 21k base)", check, None)
    print({"first": first, "again": again, "rejected": rejected, "check": check})


def test_gas__meter_batch_per_voucher(system, usdc, licensor, consumer, project, admin, chain, registry):
    """The UsageMeter's view: one consume per voucher inside one batch transaction,
    distinct credentials under the same terms, each already used once (warm channels)."""
    _, sink, capsule, _ = system
    lm = admin.deploy(project.LicenseManager, registry, admin, 86_400)  # wired to the batch mock (wire is once)
    batch = admin.deploy(project.MockMeterBatch, lm)
    lm.wire(batch, sink, sender=admin)
    tid = lm.create_terms(
        _terms(capsule, usdc, upfront_fee=0, mu_quota=10**9, rate_mu=10**6, rate_period=3600), sender=licensor
    ).return_value
    ids = [lm.purchase(tid, consumer, 0, sender=consumer).return_value for _ in range(17)]
    at = lm.credential(ids[-1]).issued_at
    batch.run(ids, 1, RESEARCH, at, consumer, sender=admin)  # first use of each credential
    one = batch.run(ids[:1], 1, RESEARCH, at, consumer, sender=admin).gas_used
    many = batch.run(ids, 1, RESEARCH, at, consumer, sender=admin).gas_used
    per_voucher = (many - one) // (len(ids) - 1)
    _record("license.consume per voucher in a meter batch (warm credential, quota + rate)", per_voucher, None)
    print({"per_voucher": per_voucher})
    # one call: 2 cold slots (credential, usage) + 1 write + call overhead (was 14.4k as check_usage + consume)
    assert per_voucher <= 15_000
