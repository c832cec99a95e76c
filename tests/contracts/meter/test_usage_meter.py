"""UsageMeter: escrow, cumulative vouchers, every rejection reason, batches, payouts."""

from __future__ import annotations

import ape

ZERO = "0x" + "00" * 20
import pytest
from eth_account import Account

from codexfield import scopes
from codexfield.constants import Reject
from codexfield.sdk.metering import HALF_N, SECP256K1_N, digest

from meter_helpers import EPOCH, FEE_BPS, NODE_PRICE, PRICE, THAW, WINDOW, terms_tuple

INFER = scopes.mask_of(["inference"])


def split(mu, price=PRICE, node_price=NODE_PRICE):
    lic, nod = mu * price, mu * node_price
    fl, fn = lic * FEE_BPS // 10_000, nod * FEE_BPS // 10_000
    return lic - fl, nod - fn, fl + fn


# --- escrow ------------------------------------------------------------------------------


def test_deposit__credits_beneficiary_and_emits(system, consumer, stranger, admin):
    system.usdc.mint(stranger, 500, sender=admin)
    system.usdc.approve(system.meter, 500, sender=stranger)
    tx = system.meter.deposit(system.usdc, 500, consumer, sender=stranger)
    assert system.meter.escrow(consumer, system.usdc) == 500
    ev = tx.events.filter(system.meter.Deposited)[0]
    assert (ev.beneficiary, ev.token, ev.amount, ev.payer) == (consumer, system.usdc, 500, stranger)


def test_deposit__zero_amount_or_beneficiary__reverts(system, consumer):
    with ape.reverts("meter: zero amount"):
        system.meter.deposit(system.usdc, 0, consumer, sender=consumer)
    with ape.reverts("meter: zero beneficiary"):
        system.meter.deposit(system.usdc, 1, "0x" + "00" * 20, sender=consumer)


def test_withdraw__token_blocks_the_consumer__escrow_leaves_to_another_address(
    project, system, admin, consumer, stranger, chain
):
    t = admin.deploy(project.MockBlacklistToken)
    t.mint(consumer, 500, sender=consumer)
    t.approve(system.meter, 500, sender=consumer)
    system.meter.deposit(t, 500, consumer, sender=consumer)
    system.meter.request_withdrawal(t, 500, sender=consumer)
    chain.pending_timestamp += THAW
    t.blacklist(consumer, True, sender=admin)
    with ape.reverts("blacklist: receiver blocked"):
        system.meter.withdraw(t, consumer, sender=consumer)
    with ape.reverts("meter: zero receiver"):
        system.meter.withdraw(t, ZERO, sender=consumer)
    tx = system.meter.withdraw(t, stranger, sender=consumer)
    assert tx.return_value == 500 and t.balanceOf(stranger) == 500 and system.meter.escrow(consumer, t) == 0
    assert [(e.consumer, e.to, e.amount) for e in tx.events.filter(system.meter.Withdrawn)] == [
        (consumer.address, stranger.address, 500)
    ]


def test_withdraw__only_after_thaw(system, consumer, fund, chain):
    fund(consumer, 1_000)
    with ape.reverts("meter: no withdrawal requested"):
        system.meter.withdraw(system.usdc, consumer, sender=consumer)
    with ape.reverts("meter: amount above escrow"):
        system.meter.request_withdrawal(system.usdc, 1_001, sender=consumer)
    system.meter.request_withdrawal(system.usdc, 600, sender=consumer)
    with ape.reverts("meter: still thawing"):
        system.meter.withdraw(system.usdc, consumer, sender=consumer)
    chain.pending_timestamp += THAW
    before = system.usdc.balanceOf(consumer)
    system.meter.withdraw(system.usdc, consumer, sender=consumer)
    assert system.usdc.balanceOf(consumer) - before == 600
    assert system.meter.escrow(consumer, system.usdc) == 400


def test_withdraw__thawing_escrow_stays_chargeable(system, consumer, node, fund, buy, voucher, sign, chain):
    fund(consumer, 100)
    cred = buy(consumer)
    system.meter.request_withdrawal(system.usdc, 100, sender=consumer)
    v = voucher(cred, 10)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    chain.pending_timestamp += THAW
    system.meter.withdraw(system.usdc, consumer, sender=consumer)
    assert system.meter.escrow(consumer, system.usdc) == 0
    assert system.usdc.balanceOf(consumer) == 100 - 10 * (PRICE + NODE_PRICE)


def test_withdraw__works_when_paused(system, admin, consumer, fund, chain):
    fund(consumer, 50)
    system.meter.request_withdrawal(system.usdc, 50, sender=consumer)
    system.meter.pause(sender=admin)
    chain.pending_timestamp += THAW
    system.meter.withdraw(system.usdc, consumer, sender=consumer)
    assert system.meter.escrow(consumer, system.usdc) == 0


# --- a good voucher ----------------------------------------------------------------------


def test_ingest__pays_license_node_and_fee_exactly(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 1_000, calls=7, failures=1, latency=700)
    tx = system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    lic, nod, fee = split(1_000)
    assert system.meter.escrow(consumer, system.usdc) == 10_000 - 1_000 * (PRICE + NODE_PRICE)
    assert system.router.vault(system.capsule, system.usdc) == lic
    assert system.meter.node_balance(node, system.usdc) == nod
    assert system.meter.fee_balance(system.usdc) == fee
    assert list(system.meter.settled(cred, node, consumer)) == [1_000, 7, 1, 700, v.issued_at]
    ev = tx.events.filter(system.meter.UsageRecorded)[0]
    assert (ev.credential_id, ev.capsule_id, ev.node, ev.payer, ev.issued_at) == (
        cred,
        system.capsule,
        node,
        consumer,
        v.issued_at,
    )
    assert (ev.delta_mu, ev.delta_calls, ev.delta_failures, ev.delta_latency_ms) == (1_000, 7, 1, 700)
    assert (ev.license_amount, ev.node_amount, ev.protocol_fee, ev.paid) == (lic, nod, fee, True)
    assert system.lm.credential(cred).mu_used == 1_000
    epoch = system.meter.current_epoch()
    u = system.meter.node_usage(node, epoch)
    assert (u.calls, u.failures, u.latency_ms_sum, u.mu, u.failed_mu) == (7, 1, 700, 1_000, 1_000 * 1 // 7)


def test_ingest__cumulative__second_voucher_pays_only_the_delta(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v1, v2 = voucher(cred, 100, calls=1), voucher(cred, 250, calls=3)
    system.meter.ingest([v1.as_tuple()], [sign(v1, consumer)], sender=node)
    system.meter.ingest([v2.as_tuple()], [sign(v2, consumer)], sender=node)
    assert system.meter.escrow(consumer, system.usdc) == 10_000 - 250 * (PRICE + NODE_PRICE)
    assert list(system.meter.settled(cred, node, consumer))[:2] == [250, 3]


def test_ingest__node_claims_earnings_even_when_paused(
    system, admin, consumer, node, stranger, fund, buy, voucher, sign
):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    system.meter.pause(sender=admin)
    _, nod, _ = split(100)
    system.meter.claim_node(system.usdc, stranger, sender=node)
    assert system.usdc.balanceOf(stranger) == nod
    with ape.reverts("meter: nothing to claim"):
        system.meter.claim_node(system.usdc, stranger, sender=node)


def test_pause__stops_deposit_only__ingest_and_withdrawal_go_on(
    system, admin, consumer, node, fund, buy, voucher, sign, chain
):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 1)
    system.meter.request_withdrawal(system.usdc, 100, sender=consumer)
    system.meter.pause(sender=admin)
    with ape.reverts("meter: paused"):
        system.meter.pause(sender=admin)
    with ape.reverts("meter: paused"):
        system.meter.deposit(system.usdc, 1, consumer, sender=consumer)
    assert system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node).return_value == 1
    chain.pending_timestamp += THAW
    assert system.meter.withdraw(system.usdc, consumer, sender=consumer).return_value == 100
    system.meter.unpause(sender=admin)
    with ape.reverts("meter: not paused"):
        system.meter.unpause(sender=admin)


def test_voucher_digest__python_matches_contract(system, voucher):
    v = voucher(5, 123, calls=4, failures=2, latency=99)
    assert bytes(system.meter.voucher_digest(v.as_tuple())) == digest(v, system.domain)


# --- every rejection, alone (reverts with the reason) ------------------------------------


def test_ingest__replayed_voucher__pays_nothing(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100)
    sig = sign(v, consumer)
    system.meter.ingest([v.as_tuple()], [sig], sender=node)
    escrow = system.meter.escrow(consumer, system.usdc)
    with ape.reverts("meter: nothing new"):
        system.meter.ingest([v.as_tuple()], [sig], sender=node)
    older = voucher(cred, 50)
    with ape.reverts("meter: nothing new"):
        system.meter.ingest([older.as_tuple()], [sign(older, consumer)], sender=node)
    assert system.meter.escrow(consumer, system.usdc) == escrow


def test_ingest__counters_decrease__rejected(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100, calls=5)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    bad = voucher(cred, 200, calls=4)
    with ape.reverts("meter: counters decreased"):
        system.meter.ingest([bad.as_tuple()], [sign(bad, consumer)], sender=node)


def test_ingest__failures_above_calls__rejected(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100, calls=1, failures=2)
    with ape.reverts("meter: bad counters"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__wrong_signer__rejected(system, consumer, stranger, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100)
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v.as_tuple()], [sign(v, stranger)], sender=node)
    v1 = voucher(cred, 1)  # built once: two builds a second apart would carry different issued_at
    tx = system.meter.ingest([v.as_tuple(), v1.as_tuple()], [sign(v, stranger), sign(v1, consumer)], sender=node)
    assert [e.reason for e in tx.events.filter(system.meter.VoucherRejected)] == [Reject.BAD_SIGNATURE]
    assert system.lm.credential(cred).mu_used == 1  # the forged voucher's MU was undone


def test_ingest__malleated_high_s_signature__rejected(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100)
    sig = sign(v, consumer)
    r, s, vv = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    assert s <= HALF_N
    malleated = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - vv])  # the other valid (r, n-s, v')
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v.as_tuple()], [malleated], sender=node)
    # the original still settles: dedupe is by counters (struct content), never by signature bytes
    system.meter.ingest([v.as_tuple()], [sig], sender=node)


@pytest.mark.parametrize("v_byte", [0, 1, 29])
def test_ingest__v_outside_27_28__rejected(system, consumer, node, fund, buy, voucher, sign, v_byte):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100)
    sig = sign(v, consumer)
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v.as_tuple()], [sig[:64] + bytes([v_byte])], sender=node)


def test_ingest__short_signature__rejected(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100)
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)[:64]], sender=node)


def test_ingest__signature_for_other_node__rejected(system, consumer, node, stranger, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    system.register(stranger)
    signed_for_node = voucher(cred, 100)
    moved = voucher(cred, 100, node_addr=stranger.address, issued_at=signed_for_node.issued_at)
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([moved.as_tuple()], [sign(signed_for_node, consumer)], sender=stranger)


def test_ingest__deadline_passed__rejected(system, consumer, node, fund, buy, voucher, sign, chain):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100, deadline=chain.pending_timestamp - 1)
    with ape.reverts("meter: deadline passed"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__escrow_short__rejected_whole_then_applies_after_deposit(
    system, consumer, node, fund, buy, voucher, sign
):
    fund(consumer, 10)
    cred = buy(consumer)
    v = voucher(cred, 100)
    sig = sign(v, consumer)
    with ape.reverts("meter: escrow short"):
        system.meter.ingest([v.as_tuple()], [sig], sender=node)
    assert system.meter.escrow(consumer, system.usdc) == 10
    assert list(system.meter.settled(cred, node, consumer))[0] == 0
    # in a batch the shortfall is rejected and the credential's usage is restored exactly
    other = voucher(cred, 1)
    tx = system.meter.ingest([v.as_tuple(), other.as_tuple()], [sig, sign(other, consumer)], sender=node)
    assert [e.reason for e in tx.events.filter(system.meter.VoucherRejected)] == [Reject.ESCROW_SHORT]
    assert system.lm.credential(cred).mu_used == 1
    system.meter.request_withdrawal(system.usdc, 0, sender=consumer)
    fund(consumer, 1_000)
    system.meter.ingest([v.as_tuple()], [sig], sender=node)
    assert system.meter.escrow(consumer, system.usdc) == 1_010 - 100 * (PRICE + NODE_PRICE)
    assert system.lm.credential(cred).mu_used == 100


def test_ingest__quota_exceeded__rejected(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer, quota=150)
    v = voucher(cred, 100)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    v2 = voucher(cred, 151)
    with ape.reverts("meter: quota exceeded"):
        system.meter.ingest([v2.as_tuple()], [sign(v2, consumer)], sender=node)
    v3 = voucher(cred, 150)
    system.meter.ingest([v3.as_tuple()], [sign(v3, consumer)], sender=node)


def test_ingest__rate_exceeded__rejected_until_next_window(system, consumer, node, fund, buy, voucher, sign, chain):
    fund(consumer, 10_000)
    cred = buy(consumer, rate_mu=100, rate_period=3600)
    v = voucher(cred, 80)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    v2 = voucher(cred, 130)
    sig2 = sign(v2, consumer)
    with ape.reverts("meter: rate exceeded"):
        system.meter.ingest([v2.as_tuple()], [sig2], sender=node)
    chain.pending_timestamp += 3600
    with ape.reverts("meter: rate exceeded"):  # still dated in the first window
        system.meter.ingest([v2.as_tuple()], [sig2], sender=node)
    v3 = voucher(cred, 130)  # the same usage, dated in the next window
    system.meter.ingest([v3.as_tuple()], [sign(v3, consumer)], sender=node)


def test_ingest__cumulative_delta_above_rate_mu__settles_over_the_windows_it_spans(
    system, consumer, node, fund, buy, voucher, sign, chain
):
    """Low: a cumulative voucher whose delta exceeds rate_mu settles when it spans enough windows."""
    fund(consumer, 100_000)
    cred = buy(consumer, rate_mu=100, rate_period=3600)
    chain.pending_timestamp += 2 * 3600 + 60  # into window 2: windows 0 and 1 passed unused
    v = voucher(cred, 300)  # 3 windows of usage, one voucher
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    start, in_window = system.lm.rate_window(cred)
    assert in_window == 100  # the two older windows absorbed 200; the excess is recorded in this one
    more = voucher(cred, 301)
    with ape.reverts("meter: rate exceeded"):  # this window is full
        system.meter.ingest([more.as_tuple()], [sign(more, consumer)], sender=node)
    chain.pending_timestamp += 3600
    ok = voucher(cred, 400)
    system.meter.ingest([ok.as_tuple()], [sign(ok, consumer)], sender=node)


def test_ingest__purpose_outside_scope__rejected(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer, scope=scopes.mask_of(["research", "inference"]))
    v = voucher(cred, 10, purpose=scopes.mask_of(["commercial"]))
    with ape.reverts("meter: purpose outside scope"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__expired_credential__rejected(system, consumer, node, fund, buy, voucher, sign, chain):
    fund(consumer, 10_000)
    cred = buy(consumer, duration=1000)
    chain.pending_timestamp += 1001
    v = voucher(cred, 10)
    with ape.reverts("meter: credential expired"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__usage_before_expiry__stays_payable_after_it(system, consumer, node, fund, buy, voucher, sign, chain):
    """Medium 3: validity is judged at issued_at, bounded by the settlement window."""
    fund(consumer, 10_000)
    cred = buy(consumer, duration=1000)
    v = voucher(cred, 10)  # served while valid
    chain.pending_timestamp += 5000
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    assert system.meter.settled(cred, node, consumer)[0] == 10


def test_ingest__outside_settlement_window__rejected(system, consumer, node, fund, buy, voucher, sign, chain):
    fund(consumer, 10_000)
    cred = buy(consumer)
    future = voucher(cred, 10, issued_at=chain.pending_timestamp + 600)
    with ape.reverts("meter: outside settlement window"):
        system.meter.ingest([future.as_tuple()], [sign(future, consumer)], sender=node)
    v = voucher(cred, 10)
    chain.pending_timestamp = v.issued_at + WINDOW + 1
    with ape.reverts("meter: outside settlement window"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__revoked_credential__rejected_after_effect(system, admin, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer, revocation=2)
    v = voucher(cred, 10)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    system.lm.revoke(cred, b"breach".ljust(32, b"\0"), sender=admin)
    v2 = voucher(cred, 20)
    with ape.reverts("meter: credential revoked"):
        system.meter.ingest([v2.as_tuple()], [sign(v2, consumer)], sender=node)


def test_ingest__capsule_flagged__usage_before_the_flag_pays_after_it_is_refused(
    system, admin, consumer, node, fund, buy, voucher, sign, chain
):
    fund(consumer, 10_000)
    cred = buy(consumer)
    served = voucher(cred, 10)  # served before the dispute flag
    chain.pending_timestamp += 10
    system.registry.set_state(system.capsule, 4, b"dispute".ljust(32, b"\0"), sender=admin)  # ARBITER: FLAGGED
    system.meter.ingest([served.as_tuple()], [sign(served, consumer)], sender=node)
    assert system.meter.settled(cred, node, consumer)[0] == 10
    after = voucher(cred, 20)  # dated after the flag
    with ape.reverts("meter: capsule flagged"):
        system.meter.ingest([after.as_tuple()], [sign(after, consumer)], sender=node)
    system.registry.set_state(system.capsule, 1, b"cleared".ljust(32, b"\0"), sender=admin)  # ruling: cleared
    chain.pending_timestamp += 10
    cleared = voucher(cred, 20)
    system.meter.ingest([cleared.as_tuple()], [sign(cleared, consumer)], sender=node)
    assert system.meter.settled(cred, node, consumer)[0] == 20


def test_ingest__unknown_credential__rejected(system, consumer, node, fund, voucher, sign):
    fund(consumer, 10_000)
    v = voucher(10**9, 10)
    with ape.reverts("meter: unknown credential"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__tee_required_without_attestation__rejected(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer, scope=scopes.mask_of(["inference", "tee_required"]))
    v = voucher(cred, 10)
    with ape.reverts("meter: tee signature missing"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__empty_or_mismatched_batch__reverts(system, consumer, node, voucher, sign):
    with ape.reverts("meter: empty batch"):
        system.meter.ingest([], [], sender=node)
    v = voucher(1, 1)
    with ape.reverts("meter: length mismatch"):
        system.meter.ingest([v.as_tuple(), v.as_tuple()], [sign(v, consumer)], sender=node)


def test_ingest__calldata_shorter_than_its_arrays__reverts(system, consumer, node, fund, buy, voucher, sign):
    """The meter reads vouchers in place from calldata: an encoding whose voucher array runs past
    the end of the call (no encoder produces one; Vyper's own decoding would read zeros there) is
    refused whole, as a length mismatch."""
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    fund(consumer, 10_000)
    v = voucher(buy(consumer), 10)
    sig = sign(v, consumer)
    selector = function_signature_to_4byte_selector(
        "ingest((uint256,address,address,uint256,uint256,uint64,uint64,uint64,uint256,uint64,uint64)[],bytes[])"
    )
    sigs = encode(["bytes[]"], [[sig]])[32:]  # the array alone: its length, element offsets and bytes
    vouchers = encode(
        ["(uint256,address,address,uint256,uint256,uint64,uint64,uint64,uint256,uint64,uint64)[]"], [[v.as_tuple()]]
    )[32:]
    head = encode(["uint256", "uint256"], [64 + len(sigs), 64])  # signatures first, then the vouchers
    whole = selector + head + sigs + vouchers
    with ape.reverts("meter: length mismatch"):
        node.transfer(system.meter, 0, data=whole[:-100])  # the voucher's last 100 bytes cut off
    tx = node.transfer(system.meter, 0, data=whole)  # the same layout, whole: settles
    assert len(tx.events.filter(system.meter.UsageRecorded)) == 1


# --- other signers -----------------------------------------------------------------------


def test_ingest__sig_auth_delegate_signs_for_holder(system, consumer, node, fund, buy, voucher, sign, chain):
    fund(consumer, 10_000)
    cred = buy(consumer)
    hot = Account.create()
    v = voucher(cred, 10)
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v.as_tuple()], [sign(v, hot)], sender=node)
    system.identity.addDelegate(consumer, b"sigAuth".ljust(32, b"\0"), hot.address, 3600, sender=consumer)
    system.meter.ingest([v.as_tuple()], [sign(v, hot)], sender=node)
    v2 = voucher(cred, 15)  # signed while the delegate is valid ...
    chain.pending_timestamp += 3601
    system.meter.ingest([v2.as_tuple()], [sign(v2, hot)], sender=node)  # ... payable after it lapsed
    v3 = voucher(cred, 20)  # signed after it lapsed
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v3.as_tuple()], [sign(v3, hot)], sender=node)


def test_ingest__revoking_sig_auth_after_service__does_not_void_voucher(
    system, consumer, node, fund, buy, voucher, sign, chain
):
    """High 2: authority is judged at issued_at; a revocation afterwards does not void served usage."""
    fund(consumer, 10_000)
    cred = buy(consumer)
    hot = Account.create()
    sig_auth = b"sigAuth".ljust(32, b"\0")
    system.identity.addDelegate(consumer, sig_auth, hot.address, 86400, sender=consumer)
    v = voucher(cred, 100)
    sig = sign(v, hot)
    chain.pending_timestamp += 10
    system.identity.revokeDelegate(consumer, sig_auth, hot.address, sender=consumer)
    system.meter.ingest([v.as_tuple()], [sig], sender=node)
    assert system.meter.settled(cred, node, consumer)[0] == 100
    late = voucher(cred, 110)  # signed by the hot key after the revocation
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([late.as_tuple()], [sign(late, hot)], sender=node)


def test_ingest__veri_key_delegate_cannot_sign(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    hot = Account.create()
    system.identity.addDelegate(consumer, b"veriKey".ljust(32, b"\0"), hot.address, 3600, sender=consumer)
    v = voucher(cred, 10)
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v.as_tuple()], [sign(v, hot)], sender=node)


def test_ingest__erc1271_wallet_signs_through_its_sig_auth_delegate(
    system, project, admin, consumer, node, voucher, sign, chain
):
    """No live ERC-1271 for vouchers: a wallet's approval could be withdrawn after service. The
    wallet adds a sigAuth delegate for itself; revoking it later does not void signed usage."""
    wallet = admin.deploy(project.MockERC1271Wallet, consumer)
    system.usdc.mint(admin, 10_000, sender=admin)
    system.usdc.approve(system.meter, 10_000, sender=admin)
    system.meter.deposit(system.usdc, 10_000, wallet, sender=admin)
    t = system.lm.create_terms(terms_tuple(system.capsule, system.usdc), sender=system.registry.ownerOf(system.capsule))
    cred = system.lm.purchase(t.return_value, wallet, 0, sender=admin).return_value
    v = voucher(cred, 10)
    assert v.payer == wallet.address
    with ape.reverts("meter: bad signature"):  # the wallet would approve this (ERC-1271), the meter does not ask
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    hot = Account.create()
    sig_auth = b"sigAuth".ljust(32, b"\0")
    wallet.add_delegate(system.identity, sig_auth, hot.address, 86400, sender=consumer)
    v = voucher(cred, 10)
    sig = sign(v, hot)
    chain.pending_timestamp += 10
    wallet.revoke_delegate(system.identity, sig_auth, hot.address, sender=consumer)
    system.meter.ingest([v.as_tuple()], [sig], sender=node)
    assert list(system.meter.settled(cred, node, wallet))[0] == 10
    v2 = voucher(cred, 20)
    with ape.reverts("meter: bad signature"):
        system.meter.ingest([v2.as_tuple()], [sign(v2, hot)], sender=node)


# --- batches -----------------------------------------------------------------------------


def test_ingest__batch_of_64_mixed__applies_good_rejects_bad_with_reasons(
    system, accounts, node, fund, buy, voucher, sign, chain
):
    holders = [accounts[i] for i in (1, 2, 3, 7, 8, 9)]
    creds = []
    for h in holders:
        fund(h, 1_000_000)
        creds.append((h, buy(h)))
    poor = accounts[10]
    fund(poor, 1)
    poor_cred = buy(poor)
    vs, sigs, expect = [], [], []
    for i in range(64):
        h, cred = creds[i % len(creds)]
        kind = i % 8
        mu = 10 * (i // len(creds) + 1)
        if kind == 0:  # bad signature
            v = voucher(cred, mu + 10**6)
            vs.append(v), sigs.append(sign(v, poor)), expect.append(Reject.BAD_SIGNATURE)
        elif kind == 1:  # deadline passed
            v = voucher(cred, mu + 10**6, deadline=chain.pending_timestamp - 5)
            vs.append(v), sigs.append(sign(v, h)), expect.append(Reject.DEADLINE_PASSED)
        elif kind == 2:  # escrow short
            v = voucher(poor_cred, 1000 + i)
            vs.append(v), sigs.append(sign(v, poor)), expect.append(Reject.ESCROW_SHORT)
        elif kind == 3:  # another node's voucher: only it (or its operator) may settle it
            v = voucher(cred, mu, node_addr=accounts[5].address)
            vs.append(v), sigs.append(sign(v, h)), expect.append(Reject.NOT_SETTLER)
        else:  # good: each credential's channel increases
            v = voucher(cred, mu)
            vs.append(v), sigs.append(sign(v, h)), expect.append(None)
    tx = system.meter.ingest([v.as_tuple() for v in vs], sigs, sender=node)
    rejected = [(e.credential_id, e.reason) for e in tx.events.filter(system.meter.VoucherRejected)]
    want_rejected = [(v.credential_id, int(r)) for v, r in zip(vs, expect) if r is not None]
    assert rejected == want_rejected
    applied = tx.events.filter(system.meter.UsageRecorded)
    # a later voucher of the same channel in the same batch is applied as a further delta
    assert len(applied) + len(rejected) == 64


def test_ingest__same_channel_twice_in_batch__second_pays_delta_only(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v1, v2 = voucher(cred, 10), voucher(cred, 30, calls=2)
    tx = system.meter.ingest(
        [v1.as_tuple(), v2.as_tuple(), v1.as_tuple()],
        [sign(v1, consumer), sign(v2, consumer), sign(v1, consumer)],
        sender=node,
    )
    assert tx.return_value == 2
    assert [e.delta_mu for e in tx.events.filter(system.meter.UsageRecorded)] == [10, 20]
    assert [e.reason for e in tx.events.filter(system.meter.VoucherRejected)] == [Reject.NOTHING_NEW]
    assert system.meter.escrow(consumer, system.usdc) == 10_000 - 30 * (PRICE + NODE_PRICE)


def test_sweep_fees__without_staking_goes_to_treasury(system, admin, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 1_000)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    fee = split(1_000)[2]
    before = system.usdc.balanceOf(admin)
    system.meter.sweep_fees(system.usdc, sender=node)
    assert system.usdc.balanceOf(admin) - before == fee
    with ape.reverts("meter: no fees"):
        system.meter.sweep_fees(system.usdc, sender=node)


def test_set_fee__admin_only_and_fee_bounded(system, admin, stranger):
    with ape.reverts("access_control: account is missing role"):
        system.meter.set_fee(stranger, 10, sender=stranger)
    with ape.reverts("meter: fee too high"):
        system.meter.set_fee(stranger, 1_001, sender=admin)
    with ape.reverts("meter: zero treasury"):
        system.meter.set_fee("0x" + "00" * 20, 10, sender=admin)
    tx = system.meter.set_fee(stranger, 10, sender=admin)
    assert tx.events.filter(system.meter.ConfigChanged)[0].protocol_fee_bps == 10


def test_wire__once_only(system, admin, stranger):
    """Medium 7: the staking the meter asks and feeds cannot be redirected after set-up."""
    with ape.reverts("access_control: account is missing role"):
        system.meter.wire(stranger, sender=stranger)
    with ape.reverts("meter: already wired"):
        system.meter.wire(stranger, sender=admin)
    with ape.reverts("license: already wired"):
        system.lm.wire(stranger, stranger, sender=admin)
    assert system.meter.staking() == system.staking.address


def test_constructor__emits_meter_configured_and_checks_windows(project, admin, system, chain, deploy_reverts):
    m = system.meter
    logs = list(m.MeterConfigured.range(0, chain.blocks.head.number + 1))
    assert [(e.epoch_length, e.genesis, e.settlement_window, e.withdrawal_thaw) for e in logs] == [
        (EPOCH, m.genesis(), WINDOW, THAW)
    ]
    args = (system.lm, system.router, system.identity, admin, EPOCH, m.genesis())
    deploy_reverts(admin, project.UsageMeter, *args, WINDOW, WINDOW, FEE_BPS, reason="meter: thaw not above window")
    other = admin.deploy(project.UsageMeter, *args, WINDOW - 1, THAW, FEE_BPS)
    lm2 = admin.deploy(project.LicenseManager, system.registry, admin, WINDOW)
    with ape.reverts("license: window mismatch"):  # the transfer cooldown must cover the window
        lm2.wire(other, system.router, sender=admin)


def test_conservation__token_balance_equals_internal_balances(system, consumer, node, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    for mu in (10, 25, 70):
        v = voucher(cred, mu)
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)
    held = system.usdc.balanceOf(system.meter)
    internal = (
        system.meter.escrow(consumer, system.usdc)
        + system.meter.node_balance(node, system.usdc)
        + system.meter.fee_balance(system.usdc)
    )
    assert held == internal


# --- issue 12: who settles, what counts, when it is judged ---------------------------------


def test_attack__third_party_forges_failed_calls_for_a_node__refused(system, stranger, node, fund, buy, voucher, sign):
    """High 1: a free credential and a zero-MU voucher with failures == calls, relayed by anyone,
    used to drive a node's usage success to 0. Only the node (or its operator) settles now, and
    only paid vouchers reach its usage."""
    cred = buy(stranger, price=0)
    forged = voucher(cred, 0, calls=50, failures=50, node_price=0)
    sig = sign(forged, stranger)
    with ape.reverts("meter: not node or operator"):
        system.meter.ingest([forged.as_tuple()], [sig], sender=stranger)
    good_cred = buy(stranger, price=0)
    other = voucher(good_cred, 0, calls=1, failures=1, node_price=0)
    tx = system.meter.ingest([forged.as_tuple(), other.as_tuple()], [sig, sign(other, stranger)], sender=stranger)
    assert [e.reason for e in tx.events.filter(system.meter.VoucherRejected)] == [Reject.NOT_SETTLER] * 2
    # Even settled by the node itself, a free voucher never moves its usage counters.
    system.meter.ingest([forged.as_tuple()], [sig], sender=node)
    u = system.meter.node_usage(node, system.meter.current_epoch())
    assert (u.calls, u.failures, u.mu, u.failed_mu) == (0, 0, 0, 0)


def test_operator__node_authorises_a_relayer(system, consumer, node, stranger, fund, buy, voucher, sign):
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 100, calls=4, failures=1)
    with ape.reverts("meter: not node or operator"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=stranger)
    tx = system.meter.set_operator(stranger, True, sender=node)
    assert tx.events.filter(system.meter.OperatorSet)[0].operator == stranger
    assert system.meter.operators(node, stranger)
    system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=stranger)
    u = system.meter.node_usage(node, system.meter.current_epoch())
    assert (u.calls, u.failures, u.mu, u.failed_mu) == (4, 1, 100, 25)
    assert system.meter.node_balance(node, system.usdc) == split(100)[1]
    system.meter.set_operator(stranger, False, sender=node)
    v2 = voucher(cred, 200)
    with ape.reverts("meter: not node or operator"):
        system.meter.ingest([v2.as_tuple()], [sign(v2, consumer)], sender=stranger)


def test_ingest__node_not_serving__rejected(system, consumer, stranger, fund, buy, voucher, sign):
    """Low: the meter pays only nodes AccessStaking says `serves(node, issued_at)`."""
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 10, node_addr=stranger.address)
    with ape.reverts("meter: node inactive"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=stranger)


def test_ingest__overflowing_node_price__rejected_alone(system, consumer, node, fund, buy, voucher, sign):
    """Low: an overflowing node_price_per_mu is rejected alone, never reverting the batch."""
    fund(consumer, 10_000)
    cred, cred2 = buy(consumer), buy(consumer)
    huge = voucher(cred, 2, node_price=2**255)
    fine = voucher(cred2, 10)
    tx = system.meter.ingest(
        [huge.as_tuple(), fine.as_tuple()], [sign(huge, consumer), sign(fine, consumer)], sender=node
    )
    assert [e.reason for e in tx.events.filter(system.meter.VoucherRejected)] == [Reject.PRICE_OVERFLOW]
    assert tx.return_value == 1
    big = voucher(cred, 1, node_price=2**256 - 1 - PRICE + 1)  # 1 MU: node part fits, the sum does not
    with ape.reverts("meter: price overflow"):
        system.meter.ingest([big.as_tuple()], [sign(big, consumer)], sender=node)
    assert system.lm.credential(cred).mu_used == 0


def test_ingest__purpose_zero__rejected(system, consumer, node, fund, buy, voucher, sign):
    """Low (decided): purpose 0 claims no right, so it is outside every scope."""
    fund(consumer, 10_000)
    cred = buy(consumer)
    v = voucher(cred, 10, purpose=0)
    with ape.reverts("meter: purpose outside scope"):
        system.meter.ingest([v.as_tuple()], [sign(v, consumer)], sender=node)


def test_attack__transfer_after_service__voucher_stays_payable_from_signer(
    system, consumer, stranger, node, fund, buy, voucher, sign, chain
):
    """High 2: transferring a transferable credential no longer voids served, unsettled usage."""
    fund(consumer, 10_000)
    fund(stranger, 10_000)
    cred = buy(consumer, transferable=True)
    v = voucher(cred, 100)
    sig = sign(v, consumer)
    chain.pending_timestamp += 10
    system.lm.transferFrom(consumer, stranger, cred, sender=consumer)
    assert system.lm.last_transfer(cred)[0] == consumer
    system.meter.ingest([v.as_tuple()], [sig], sender=node)
    assert system.meter.escrow(consumer, system.usdc) == 10_000 - 100 * (PRICE + NODE_PRICE)
    # the old holder cannot sign usage dated after the transfer; the new holder opens its own channel
    late = voucher(cred, 200, payer=consumer.address)
    with ape.reverts("meter: payer not holder"):
        system.meter.ingest([late.as_tuple()], [sign(late, consumer)], sender=node)
    new = voucher(cred, 5)
    assert new.payer == stranger.address
    system.meter.ingest([new.as_tuple()], [sign(new, stranger)], sender=node)
    assert system.meter.settled(cred, node, stranger)[0] == 5
    with ape.reverts("license: transfer cooldown"):  # one previous holder covers every payable voucher
        system.lm.transferFrom(stranger, consumer, cred, sender=stranger)


def test_attack__withdraw_after_service__voucher_settles_before_thaw_ends(
    system, consumer, node, fund, buy, voucher, sign, chain
):
    """High 2: request + wait withdrawal cannot outrun a voucher (settlement_window < thaw)."""
    fund(consumer, 1_000)
    cred = buy(consumer)
    v = voucher(cred, 100)
    sig = sign(v, consumer)
    system.meter.request_withdrawal(system.usdc, 1_000, sender=consumer)
    chain.pending_timestamp = v.issued_at + WINDOW - 30  # near the window's end; the thaw is still running
    with ape.reverts("meter: still thawing"):
        system.meter.withdraw(system.usdc, consumer, sender=consumer)
    system.meter.ingest([v.as_tuple()], [sig], sender=node)
    chain.pending_timestamp += THAW
    assert system.meter.withdraw(system.usdc, consumer, sender=consumer).return_value == 1_000 - 100 * (
        PRICE + NODE_PRICE
    )


def test_ingest__more_capsules_and_nodes_than_the_accumulators__every_amount_booked(
    system, admin, licensor, consumer, node, fund, voucher, sign, accounts
):
    """A batch spanning 10 capsules and 6 nodes (more than the meter's per-batch accumulators
    hold) books every license, node, fee and usage amount exactly, as smaller batches would."""
    import os

    m, r, usdc = system.meter, system.router, system.usdc
    nodes = [node]
    for _ in range(5):
        n = accounts.generate_test_account()
        admin.transfer(n, 10**17)
        system.register(n)
        m.set_operator(node, True, sender=n)
        nodes.append(n)
    caps, creds = [], []
    for _ in range(10):
        cap = system.registry.mint(2, os.urandom(32), [], [], "", sender=licensor).return_value
        t = system.lm.create_terms(terms_tuple(cap, usdc), sender=licensor).return_value
        creds.append(system.lm.purchase(t, consumer, 2**255, sender=consumer).return_value)
        caps.append(cap)
    fund(consumer, 10**9)
    escrow0 = m.escrow(consumer, usdc)
    fee0 = m.fee_balance(usdc)
    router0 = usdc.balanceOf(r)
    node0 = [m.node_balance(n, usdc) for n in nodes]
    epoch = m.current_epoch()
    usage0 = [m.node_usage(n, epoch) for n in nodes]
    vs, sigs = [], []
    for i, cred in enumerate(creds):
        v = voucher(cred, 100 * (i + 1), calls=i + 1, latency=10 * (i + 1), node_addr=nodes[i % 6].address)
        vs.append(v.as_tuple())
        sigs.append(sign(v, consumer))
    assert m.ingest(vs, sigs, sender=node).return_value == 10
    lic_total = fee_total = 0
    node_due = [0] * 6
    mu_due = [0] * 6
    calls_due = [0] * 6
    for i, cap in enumerate(caps):
        lic, nod, fee = split(100 * (i + 1))
        assert r.vault(cap, usdc) == lic
        lic_total += lic
        fee_total += fee
        node_due[i % 6] += nod
        mu_due[i % 6] += 100 * (i + 1)
        calls_due[i % 6] += i + 1
    assert usdc.balanceOf(r) - router0 == lic_total
    assert m.fee_balance(usdc) - fee0 == fee_total
    assert escrow0 - m.escrow(consumer, usdc) == sum(100 * (i + 1) for i in range(10)) * (PRICE + NODE_PRICE)
    for j, n in enumerate(nodes):
        assert m.node_balance(n, usdc) - node0[j] == node_due[j]
        u = m.node_usage(n, epoch)
        assert (u.calls - usage0[j].calls, u.mu - usage0[j].mu) == (calls_due[j], mu_due[j])


def test_max_batch__the_python_mirror_is_the_contracts(system):
    from codexfield.constants import METER_MAX_BATCH

    assert int(system.meter.MAX_BATCH()) == METER_MAX_BATCH
