"""LicenseManager: terms, purchases, usage rules, revocation timing, ERC-721/5192 transfers."""

from __future__ import annotations

import ape
import pytest

from codexfield import scopes
from codexfield.constants import CapsuleState, Reject, Revocation

from license_helpers import DAY, FIELDS, PRICE, UPFRONT, WINDOW, terms_tuple

RESEARCH = scopes.BY_NAME["research"].mask
INFERENCE = scopes.BY_NAME["inference"].mask
COMMERCIAL = scopes.BY_NAME["commercial"].mask
ZERO = "0x0000000000000000000000000000000000000000"


# --- deployment ---------------------------------------------------------------------------


def test_init__admin__holds_admin_pauser_arbiter(lm, admin, registry):
    for role in (lm.DEFAULT_ADMIN_ROLE(), lm.PAUSER_ROLE(), lm.ARBITER_ROLE()):
        assert lm.hasRole(role, admin)
    assert lm.registry() == registry
    assert lm.next_terms_id() == 1 and lm.next_credential_id() == 1


def test_init__zero_registry_or_window__reverts(project, admin, registry, deploy_reverts):
    deploy_reverts(admin, project.LicenseManager, ZERO, admin, WINDOW, reason="license: zero registry")
    deploy_reverts(admin, project.LicenseManager, registry, admin, 0, reason="license: bad settlement window")


def test_supports_interface__erc165_721_metadata_5192(lm):
    for iid in ("0x01ffc9a7", "0x80ac58cd", "0x5b5e139f", "0xb45a3c0e", "0x7965db0b"):
        assert lm.supportsInterface(iid)
    assert not lm.supportsInterface("0xffffffff")


def test_reject_codes__match_python_constants(lm):
    assert lm.UNKNOWN_CREDENTIAL() == Reject.UNKNOWN_CREDENTIAL
    assert lm.EXPIRED() == Reject.EXPIRED
    assert lm.REVOKED() == Reject.REVOKED
    assert lm.QUOTA_EXCEEDED() == Reject.QUOTA_EXCEEDED
    assert lm.RATE_EXCEEDED() == Reject.RATE_EXCEEDED
    assert lm.PURPOSE_OUT_OF_SCOPE() == Reject.PURPOSE_OUT_OF_SCOPE
    assert lm.NOT_HOLDER() == Reject.NOT_HOLDER
    assert lm.LICENSOR_AT_WILL() == Revocation.LICENSOR_AT_WILL
    assert lm.ARBITER_ON_BREACH() == Revocation.ARBITER_ON_BREACH


# --- create_terms -------------------------------------------------------------------------


def test_create_terms__round_trips_every_field_and_logs_them(lm, licensor, capsule, usdc):
    t = terms_tuple(
        capsule,
        usdc,
        mu_quota=1_000,
        rate_mu=100,
        rate_period=3600,
        derivative_share_bps=1_500,
        revocation=3,
        notice_period=7 * DAY,
        max_credentials=9,
        transferable=True,
        scope=scopes.mask_of(["research", "derivatives", "medical"]),
    )
    tx = lm.create_terms(t, sender=licensor)
    assert tx.return_value == 1
    got = lm.terms(1)
    for name, value in zip(FIELDS, t):
        assert getattr(got, name) == value, name
    [ev] = tx.events.filter(lm.TermsCreated)
    assert ev.terms_id == 1
    for name, value in zip(FIELDS, t):
        assert getattr(ev, name) == value, name
    assert lm.terms_active(1) and lm.terms_id_of(t) == 1 and lm.next_terms_id() == 2


def test_create_terms__identical_terms__same_id_without_event(lm, licensor, capsule, usdc):
    t = terms_tuple(capsule, usdc)
    first = lm.create_terms(t, sender=licensor).return_value
    tx = lm.create_terms(t, sender=licensor)
    assert tx.return_value == first
    assert not list(tx.events.filter(lm.TermsCreated))
    other = lm.create_terms(terms_tuple(capsule, usdc, price_per_mu=PRICE + 1), sender=licensor).return_value
    assert other == first + 1


def test_create_terms__not_capsule_owner__reverts(lm, capsule, usdc, stranger):
    with ape.reverts("license: not capsule owner"):
        lm.create_terms(terms_tuple(capsule, usdc), sender=stranger)


def test_create_terms__unknown_capsule__reverts(lm, licensor, usdc):
    for capsule_id in (0, 999, 2**64 + 1):
        with ape.reverts("license: unknown capsule"):
            lm.create_terms(terms_tuple(capsule_id, usdc), sender=licensor)


def test_create_terms__after_capsule_transfer__new_owner_only(lm, registry, licensor, stranger, capsule, usdc):
    registry.transferFrom(licensor, stranger, capsule, sender=licensor)
    with ape.reverts("license: not capsule owner"):
        lm.create_terms(terms_tuple(capsule, usdc), sender=licensor)
    assert lm.create_terms(terms_tuple(capsule, usdc), sender=stranger).return_value == 1


INVALID_FIELDS = [
    (dict(payment_token=ZERO), "license: zero payment token"),
    (dict(price_per_mu=2**128), "license: price too large"),
    (dict(upfront_fee=2**128), "license: upfront too large"),
    (dict(duration=2**32), "license: duration too long"),
    (dict(mu_quota=2**96), "license: quota too large"),
    (dict(rate_mu=2**80, rate_period=60), "license: rate too large"),
    (dict(rate_mu=5, rate_period=2**32), "license: rate period too long"),
    (dict(rate_mu=5), "license: rate needs a period"),
    (dict(rate_period=60), "license: period needs a rate"),
    (dict(mu_quota=10, rate_mu=11, rate_period=60), "license: quota below rate"),
    (dict(scope=2**64), "license: scope beyond 64 bits"),
    (dict(derivative_share_bps=10_001), "license: share above 100%"),
    (dict(revocation=4), "license: bad revocation"),
    (dict(notice_period=2**32), "license: notice too long"),
]


def test_create_terms__invalid_field__reverts_with_reason(lm, licensor, capsule, usdc):
    for override, reason in INVALID_FIELDS:
        kw = dict(override)
        token = kw.pop("payment_token", usdc)
        with ape.reverts(reason):
            lm.create_terms(terms_tuple(capsule, token, **kw), sender=licensor)


def test_create_terms__limits_at_their_widths__accepted(create, lm):
    tid = create(
        price_per_mu=2**128 - 1,
        upfront_fee=2**128 - 1,
        duration=2**32 - 1,
        mu_quota=2**96 - 1,
        rate_mu=2**80 - 1,
        rate_period=2**32 - 1,
        scope=2**64 - 1,
        derivative_share_bps=10_000,
        notice_period=2**32 - 1,
        max_credentials=2**32 - 1,
    )
    t = lm.terms(tid)
    assert t.price_per_mu == 2**128 - 1 and t.mu_quota == 2**96 - 1 and t.rate_mu == 2**80 - 1
    assert t.scope == 2**64 - 1 and t.max_credentials == 2**32 - 1 and t.notice_period == 2**32 - 1


def test_create_terms__paused__reverts(lm, admin, licensor, capsule, usdc):
    lm.pause(sender=admin)
    with ape.reverts("license: paused"):
        lm.create_terms(terms_tuple(capsule, usdc), sender=licensor)


def test_terms__unknown__reverts(lm):
    with ape.reverts("license: unknown terms"):
        lm.terms(1)


# --- set_terms_active ---------------------------------------------------------------------


def test_set_terms_active__owner_closes_and_reopens(lm, create, buy, licensor, consumer):
    tid = create()
    tx = lm.set_terms_active(tid, False, sender=licensor)
    assert [(e.terms_id, e.active) for e in tx.events.filter(lm.TermsActive)] == [(tid, False)]
    assert not lm.terms_active(tid)
    with ape.reverts("license: terms inactive"):
        buy(tid, consumer)
    lm.set_terms_active(tid, True, sender=licensor)
    assert lm.ownerOf(buy(tid, consumer)) == consumer


def test_set_terms_active__stranger__reverts(lm, create, stranger):
    tid = create()
    with ape.reverts("license: not capsule owner"):
        lm.set_terms_active(tid, False, sender=stranger)


def test_set_terms_active__unknown_terms__reverts(lm, licensor):
    with ape.reverts("license: unknown terms"):
        lm.set_terms_active(5, False, sender=licensor)


# --- purchase -----------------------------------------------------------------------------


def test_purchase__mints_locked_credential_and_pays_sink(
    lm, create, licensor, consumer, stranger, usdc, sink, capsule, chain
):
    tid = create()
    usdc.mint(stranger, UPFRONT, sender=stranger)
    usdc.approve(lm, UPFRONT, sender=stranger)
    tx = lm.purchase(tid, consumer, UPFRONT, sender=stranger)  # stranger pays, consumer holds
    cid = tx.return_value
    assert cid == 1 and lm.ownerOf(cid) == consumer and lm.balanceOf(consumer) == 1
    ts = chain.blocks[tx.block_number].timestamp
    c = lm.credential(cid)
    assert (c.terms_id, c.holder, c.issued_at, c.expires_at, c.mu_used, c.revoked_at) == (
        tid,
        consumer,
        ts,
        ts + 30 * DAY,
        0,
        0,
    )
    [ev] = tx.events.filter(lm.CredentialIssued)
    assert (ev.credential_id, ev.terms_id, ev.capsule_id, ev.holder, ev.expires_at) == (
        cid,
        tid,
        capsule,
        consumer,
        ts + 30 * DAY,
    )
    assert [e.tokenId for e in tx.events.filter(lm.Locked)] == [cid]
    assert lm.locked(cid)
    assert usdc.balanceOf(stranger) == 0 and usdc.balanceOf(sink) == UPFRONT
    assert sink.credited(capsule, usdc) == UPFRONT and sink.total(usdc) == UPFRONT
    assert lm.credentials_issued(tid) == 1


def test_purchase__perpetual_transferable__no_expiry_unlocked_event(lm, create, consumer):
    tid = create(duration=0, transferable=True, upfront_fee=0)
    tx = lm.purchase(tid, consumer, 0, sender=consumer)
    cid = tx.return_value
    assert [e.tokenId for e in tx.events.filter(lm.Unlocked)] == [cid] and not tx.events.filter(lm.Locked)
    assert lm.credential(cid).expires_at == 0 and not lm.locked(cid)
    assert lm.authorize(cid, consumer, RESEARCH, 2**40 - 1)


def test_create_terms__needs_wiring_and_a_token_the_router_allows(
    project, admin, registry, lm, sink, licensor, capsule, usdc
):
    """Low: terms in a token the router refuses would revert every meter batch they appear in."""
    lm2 = admin.deploy(project.LicenseManager, registry, admin, WINDOW)  # not wired
    with ape.reverts("license: not wired"):
        lm2.create_terms(terms_tuple(capsule, usdc, upfront_fee=0), sender=licensor)
    sink.set_refused(usdc, True, sender=admin)
    with ape.reverts("license: token not allowed"):
        lm.create_terms(terms_tuple(capsule, usdc, upfront_fee=0), sender=licensor)
    sink.set_refused(usdc, False, sender=admin)
    assert lm.create_terms(terms_tuple(capsule, usdc, upfront_fee=0), sender=licensor).return_value > 0


def test_purchase__upfront_above_max__reverts(lm, create, buy, consumer):
    tid = create()
    with ape.reverts("license: upfront above max"):
        buy(tid, consumer, max_upfront=UPFRONT - 1)


def test_purchase__licensor_publishes_pricier_terms__max_upfront_still_protects(lm, create, buy, consumer, usdc):
    cheap = create()
    pricey = create(upfront_fee=UPFRONT * 5)  # terms are immutable: a raise is a new terms id
    assert pricey != cheap and lm.terms(cheap).upfront_fee == UPFRONT
    usdc.mint(consumer, UPFRONT * 5, sender=consumer)
    usdc.approve(lm, UPFRONT * 5, sender=consumer)  # over-generous allowance
    with ape.reverts("license: upfront above max"):
        lm.purchase(pricey, consumer, UPFRONT, sender=consumer)
    assert usdc.balanceOf(consumer) == UPFRONT * 5
    lm.purchase(cheap, consumer, UPFRONT, sender=consumer)
    assert usdc.balanceOf(consumer) == UPFRONT * 4


def test_purchase__unknown_terms__reverts(lm, consumer):
    with ape.reverts("license: unknown terms"):
        lm.purchase(1, consumer, 0, sender=consumer)


def test_purchase__zero_holder__reverts(lm, create, consumer):
    tid = create(upfront_fee=0)
    with ape.reverts("license: zero holder"):
        lm.purchase(tid, ZERO, 0, sender=consumer)


def test_purchase__capsule_disabled_or_flagged__reverts(lm, registry, create, buy, admin, licensor, consumer, capsule):
    tid = create()
    registry.set_state(capsule, int(CapsuleState.DISABLED), b"\x00" * 32, sender=licensor)
    with ape.reverts("license: capsule disabled"):
        buy(tid, consumer)
    registry.set_state(capsule, int(CapsuleState.FLAGGED), b"\x00" * 32, sender=admin)  # registry admin is ARBITER
    with ape.reverts("license: capsule flagged"):
        buy(tid, consumer)
    registry.set_state(capsule, int(CapsuleState.ACTIVE), b"\x00" * 32, sender=admin)
    assert lm.ownerOf(buy(tid, consumer)) == consumer


def test_purchase__capsule_deprecated__still_sells(lm, registry, create, buy, licensor, consumer, capsule):
    tid = create()
    registry.set_state(capsule, int(CapsuleState.DEPRECATED), b"\x00" * 32, sender=licensor)
    assert lm.ownerOf(buy(tid, consumer)) == consumer


def test_purchase__max_credentials__sold_out(lm, create, buy, consumer, stranger):
    tid = create(max_credentials=2, upfront_fee=0)
    buy(tid, consumer)
    buy(tid, stranger)
    with ape.reverts("license: sold out"):
        buy(tid, consumer)
    assert lm.credentials_issued(tid) == 2


def test_purchase__paused__reverts_and_unpause_resumes(lm, create, buy, admin, consumer, stranger):
    tid = create()
    with ape.reverts("access_control: account is missing role"):
        lm.pause(sender=stranger)
    lm.pause(sender=admin)
    with ape.reverts("license: paused"):
        buy(tid, consumer)
    lm.unpause(sender=admin)
    assert lm.ownerOf(buy(tid, consumer)) == consumer


def test_purchase__no_allowance__reverts_and_mints_nothing(lm, create, consumer, usdc):
    tid = create()
    usdc.mint(consumer, UPFRONT, sender=consumer)
    with ape.reverts():
        lm.purchase(tid, consumer, UPFRONT, sender=consumer)
    assert lm.balanceOf(consumer) == 0 and lm.next_credential_id() == 1


def test_purchase__fee_on_transfer_token__rejected(project, lm, create, consumer, sink, admin):
    fot = admin.deploy(project.MockFeeOnTransferToken, 100)  # 1% burned per transfer
    tid = create(token=fot)
    fot.mint(consumer, UPFRONT, sender=consumer)
    fot.approve(lm, UPFRONT, sender=consumer)
    with ape.reverts("license: fee-on-transfer token"):
        lm.purchase(tid, consumer, UPFRONT, sender=consumer)
    assert fot.balanceOf(consumer) == UPFRONT and fot.balanceOf(sink) == 0


def test_purchase__zero_fee_on_transfer_rate__accepted(project, lm, create, consumer, sink, admin, capsule):
    fot = admin.deploy(project.MockFeeOnTransferToken, 0)
    tid = create(token=fot)
    fot.mint(consumer, UPFRONT, sender=consumer)
    fot.approve(lm, UPFRONT, sender=consumer)
    lm.purchase(tid, consumer, UPFRONT, sender=consumer)
    assert sink.credited(capsule, fot) == UPFRONT


def test_pause__bit_shares_the_globals_word__sink_and_counters_survive(lm, admin, create, buy, consumer, sink):
    tid = create()
    buy(tid, consumer)
    lm.pause(sender=admin)
    assert lm.paused()
    with ape.reverts("license: paused"):
        lm.pause(sender=admin)
    assert lm.paused() and lm.revenue_sink() == sink and lm.next_credential_id() == 2 and lm.next_terms_id() == 2
    tx = lm.unpause(sender=admin)
    assert [e.account for e in tx.events.filter(lm.Unpaused)] == [admin]
    with ape.reverts("license: not paused"):
        lm.unpause(sender=admin)
    assert not lm.paused() and lm.revenue_sink() == sink and lm.next_credential_id() == 2


def test_wire__admin_only_once_and_counters_untouched(project, registry, lm, stranger, admin, sink, meter):
    """Medium 7: the meter and the revenue sink cannot be redirected after set-up."""
    with ape.reverts("license: already wired"):
        lm.wire(stranger, stranger, sender=admin)
    lm2 = admin.deploy(project.LicenseManager, registry, admin, WINDOW)
    with ape.reverts("access_control: account is missing role"):
        lm2.wire(stranger, stranger, sender=stranger)
    with ape.reverts("license: zero address"):
        lm2.wire(stranger, "0x" + "00" * 20, sender=admin)
    tx = lm2.wire(meter, sink, sender=admin)
    ev = tx.events.filter(lm2.Wired)[0]
    assert (ev.usage_meter, ev.revenue_sink) == (meter, sink)
    assert lm2.revenue_sink() == sink and lm2.usage_meter() == meter and lm2.next_credential_id() == 1


# --- authorize / check_usage: validity window ----------------------------------------------


@pytest.fixture
def cred(create, buy, consumer, lm):
    """A 30-day research+inference credential held by the consumer; returns (id, issued_at, expires_at)."""
    cid = buy(create(), consumer)
    c = lm.credential(cid)
    return cid, c.issued_at, c.expires_at


def test_authorize__exact_boundaries(lm, cred, consumer):
    cid, issued, expires = cred
    assert not lm.authorize(cid, consumer, RESEARCH, issued - 1)
    assert lm.authorize(cid, consumer, RESEARCH, issued)
    assert lm.authorize(cid, consumer, RESEARCH, expires - 1)
    assert not lm.authorize(cid, consumer, RESEARCH, expires)
    assert lm.check_usage(cid, 1, RESEARCH, issued - 1, consumer).status == Reject.EXPIRED
    assert lm.check_usage(cid, 1, RESEARCH, expires - 1, consumer).status == Reject.OK
    assert lm.check_usage(cid, 1, RESEARCH, expires, consumer).status == Reject.EXPIRED


def test_authorize__not_holder_or_out_of_scope__false(lm, cred, consumer, stranger):
    cid, issued, _ = cred
    assert not lm.authorize(cid, stranger, RESEARCH, issued)
    assert not lm.authorize(cid, consumer, COMMERCIAL, issued)
    assert not lm.authorize(cid, consumer, RESEARCH | COMMERCIAL, issued)
    assert lm.authorize(cid, consumer, RESEARCH | INFERENCE, issued)
    assert not lm.authorize(cid, consumer, 0, issued)  # purpose 0 claims no right: refused
    assert not lm.authorize(999, consumer, RESEARCH, issued)


def test_check_usage__returns_pricing_data(lm, cred, consumer, capsule, usdc):
    cid, issued, _ = cred
    r = lm.check_usage(cid, 5, INFERENCE, issued, consumer)
    assert (r.status, r.holder, r.capsule_id, r.payment_token, r.price_per_mu, r.scope) == (
        Reject.OK,
        consumer,
        capsule,
        usdc,
        PRICE,
        RESEARCH | INFERENCE,
    )
    r = lm.check_usage(cid, 5, COMMERCIAL, issued, consumer)
    assert r.status == Reject.PURPOSE_OUT_OF_SCOPE and r.holder == consumer and r.price_per_mu == PRICE


def test_check_usage__unknown_credential__status_4_and_zeros(lm, consumer):
    r = lm.check_usage(77, 1, 0, 1, consumer)
    assert (r.status, r.holder, r.capsule_id, r.payment_token, r.price_per_mu, r.scope) == (
        Reject.UNKNOWN_CREDENTIAL,
        ZERO,
        0,
        ZERO,
        0,
        0,
    )


def test_check_usage__time_beyond_40_bits__expired_even_if_perpetual(lm, create, buy, consumer):
    cid = buy(create(duration=0), consumer)
    assert lm.check_usage(cid, 1, RESEARCH, 2**40 - 1, consumer).status == Reject.OK
    assert lm.check_usage(cid, 1, RESEARCH, 2**40, consumer).status == Reject.EXPIRED


def test_credential_and_locked__unknown__revert(lm):
    with ape.reverts("license: unknown credential"):
        lm.credential(3)
    with ape.reverts("license: unknown credential"):
        lm.locked(3)
    with ape.reverts("license: unknown credential"):
        lm.tokenURI(3)


def test_token_uri__describes_the_credential(lm, cred, capsule):
    cid, issued, expires = cred
    uri = lm.tokenURI(cid)
    assert uri.startswith("data:application/json;utf8,")
    assert f'"terms_id":1,"capsule_id":{capsule},"issued_at":{issued},"expires_at":{expires}' in uri


# --- consume: quota, rate ------------------------------------------------------------------


def test_consume__not_meter__reverts(lm, cred, consumer):
    cid, issued, _ = cred
    with ape.reverts("license: not meter"):
        lm.consume(cid, 1, RESEARCH, issued, consumer, sender=consumer)


def test_consume__applies_mu_and_failure_changes_nothing(lm, cred, meter, consumer):
    cid, issued, expires = cred
    assert lm.consume(cid, 40, RESEARCH, issued, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.credential(cid).mu_used == 40
    assert (
        lm.consume(cid, 40, COMMERCIAL, issued, consumer, sender=meter).return_value.status
        == Reject.PURPOSE_OUT_OF_SCOPE
    )
    assert lm.consume(cid, 40, RESEARCH, expires, consumer, sender=meter).return_value.status == Reject.EXPIRED
    assert (
        lm.consume(999, 40, RESEARCH, issued, consumer, sender=meter).return_value.status == Reject.UNKNOWN_CREDENTIAL
    )
    assert lm.credential(cid).mu_used == 40


def test_consume__quota_exhaustion(lm, create, buy, consumer, meter):
    cid = buy(create(mu_quota=100), consumer)
    at = lm.credential(cid).issued_at
    assert lm.consume(cid, 60, RESEARCH, at, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.check_usage(cid, 41, RESEARCH, at, consumer).status == Reject.QUOTA_EXCEEDED
    assert lm.consume(cid, 41, RESEARCH, at, consumer, sender=meter).return_value.status == Reject.QUOTA_EXCEEDED
    assert lm.authorize(cid, consumer, RESEARCH, at)
    assert lm.consume(cid, 40, RESEARCH, at, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.credential(cid).mu_used == 100
    assert not lm.authorize(cid, consumer, RESEARCH, at)  # exhausted
    assert lm.consume(cid, 1, RESEARCH, at, consumer, sender=meter).return_value.status == Reject.QUOTA_EXCEEDED
    assert lm.consume(cid, 0, RESEARCH, at, consumer, sender=meter).return_value.status == Reject.OK


def test_consume__unlimited_quota__capped_at_96_bits(lm, cred, meter, consumer):
    cid, issued, _ = cred
    assert lm.consume(cid, 2**96 - 2, RESEARCH, issued, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.consume(cid, 2, RESEARCH, issued, consumer, sender=meter).return_value.status == Reject.QUOTA_EXCEEDED
    assert (
        lm.consume(cid, 2**255, RESEARCH, issued, consumer, sender=meter).return_value.status == Reject.QUOTA_EXCEEDED
    )
    assert lm.consume(cid, 1, RESEARCH, issued, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.credential(cid).mu_used == 2**96 - 1


def test_consume__fixed_rate_windows_aligned_to_issuance(lm, create, buy, consumer, meter):
    cid = buy(create(rate_mu=10, rate_period=3600, mu_quota=25), consumer)
    t0 = lm.credential(cid).issued_at
    assert lm.consume(cid, 6, RESEARCH, t0 + 10, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.rate_window(cid) == (t0, 6)
    assert lm.check_usage(cid, 5, RESEARCH, t0 + 3599, consumer).status == Reject.RATE_EXCEEDED
    assert lm.consume(cid, 5, RESEARCH, t0 + 3599, consumer, sender=meter).return_value.status == Reject.RATE_EXCEEDED
    assert lm.consume(cid, 4, RESEARCH, t0 + 3599, consumer, sender=meter).return_value.status == Reject.OK
    # next window starts exactly at t0 + 3600
    assert lm.check_usage(cid, 10, RESEARCH, t0 + 3600, consumer).status == Reject.OK
    assert lm.consume(cid, 10, RESEARCH, t0 + 3600, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.rate_window(cid) == (t0 + 3600, 10)
    # usage dated in an older window counts against the latest one
    assert lm.consume(cid, 1, RESEARCH, t0 + 5, consumer, sender=meter).return_value.status == Reject.RATE_EXCEEDED
    # skipped windows lend their unused allowance (a cumulative voucher covers them); the quota
    # (25) still binds: 20 used
    assert (
        lm.consume(cid, 6, RESEARCH, t0 + 5 * 3600 + 1, consumer, sender=meter).return_value.status
        == Reject.QUOTA_EXCEEDED
    )
    assert lm.consume(cid, 5, RESEARCH, t0 + 5 * 3600 + 1, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.rate_window(cid) == (t0 + 5 * 3600, 0)  # absorbed by windows 2-4
    assert lm.credential(cid).mu_used == 25


def test_authorize__ignores_rate_window(lm, create, buy, consumer, meter):
    cid = buy(create(rate_mu=10, rate_period=3600), consumer)
    t0 = lm.credential(cid).issued_at
    lm.consume(cid, 10, RESEARCH, t0, consumer, sender=meter)
    assert lm.check_usage(cid, 1, RESEARCH, t0, consumer).status == Reject.RATE_EXCEEDED
    assert lm.authorize(cid, consumer, RESEARCH, t0)


def test_consume__paused__still_settles(lm, cred, meter, admin, consumer):
    cid, issued, _ = cred
    lm.pause(sender=admin)
    assert lm.consume(cid, 3, RESEARCH, issued, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.credential(cid).mu_used == 3


# --- revocation --------------------------------------------------------------------------


def test_revoke__irrevocable__reverts(lm, cred, licensor, admin):
    cid, _, _ = cred
    for who in (licensor, admin):
        with ape.reverts("license: irrevocable"):
            lm.revoke(cid, b"\x01" * 32, sender=who)


def test_revoke__unknown_credential__reverts(lm, licensor):
    with ape.reverts("license: unknown credential"):
        lm.revoke(5, b"\x00" * 32, sender=licensor)


def test_revoke__licensor_at_will__effective_after_notice(lm, create, buy, licensor, consumer, meter, chain):
    cid = buy(create(revocation=1, notice_period=7 * DAY), consumer)
    tx = lm.revoke(cid, b"\x0a" * 32, sender=licensor)
    now = chain.blocks[tx.block_number].timestamp
    eff = now + 7 * DAY
    [ev] = tx.events.filter(lm.CredentialRevoked)
    assert (ev.credential_id, ev.by, ev.reason, ev.effective_at) == (cid, licensor, b"\x0a" * 32, eff)
    assert lm.credential(cid).revoked_at == eff
    assert lm.authorize(cid, consumer, RESEARCH, eff - 1)
    assert not lm.authorize(cid, consumer, RESEARCH, eff)
    assert lm.consume(cid, 5, RESEARCH, eff - 1, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.consume(cid, 5, RESEARCH, eff, consumer, sender=meter).return_value.status == Reject.REVOKED
    assert lm.credential(cid).mu_used == 5
    # a second revocation cannot postpone
    chain.pending_timestamp += DAY
    with ape.reverts("license: already revoked"):
        lm.revoke(cid, b"\x0b" * 32, sender=licensor)


def test_revoke__after_notice_elapses__time_travel(lm, create, buy, licensor, consumer, chain, registry, mint_capsule):
    cid = buy(
        create(
            revocation=1, notice_period=DAY, derivative_share_bps=0, scope=scopes.mask_of(["research", "derivatives"])
        ),
        consumer,
    )
    lm.revoke(cid, b"\x00" * 32, sender=licensor)
    assert lm.can_derive(cid, consumer, lm.terms(1).capsule_id, 0)
    chain.pending_timestamp += DAY
    chain.mine()
    assert not lm.can_derive(cid, consumer, lm.terms(1).capsule_id, 0)


def test_revoke__arbiter_on_breach__immediate_and_earlier_than_notice(
    lm, create, buy, licensor, arbiter, admin, consumer, meter, chain
):
    cid = buy(create(revocation=3, notice_period=7 * DAY), consumer)
    lm.grantRole(lm.ARBITER_ROLE(), arbiter, sender=admin)
    chain.pending_timestamp += 100
    tx1 = lm.revoke(cid, b"\x01" * 32, sender=licensor)
    t1 = chain.blocks[tx1.block_number].timestamp
    tx2 = lm.revoke(cid, b"\x02" * 32, sender=arbiter)
    t2 = chain.blocks[tx2.block_number].timestamp
    assert lm.credential(cid).revoked_at == t2 < t1 + 7 * DAY
    assert (
        lm.consume(cid, 1, RESEARCH, t2 - 1, consumer, sender=meter).return_value.status == Reject.OK
    )  # dated before: payable
    assert lm.consume(cid, 1, RESEARCH, t2, consumer, sender=meter).return_value.status == Reject.REVOKED
    with ape.reverts("license: already revoked"):
        lm.revoke(cid, b"\x03" * 32, sender=arbiter)
    with ape.reverts("license: already revoked"):
        lm.revoke(cid, b"\x03" * 32, sender=licensor)


def test_revoke__licensor_without_at_will__reverts(lm, create, buy, licensor, consumer):
    cid = buy(create(revocation=2), consumer)
    with ape.reverts("license: not revocable by licensor"):
        lm.revoke(cid, b"\x00" * 32, sender=licensor)


def test_revoke__arbiter_without_on_breach__reverts(lm, create, buy, admin, consumer):
    cid = buy(create(revocation=1, notice_period=DAY), consumer)
    with ape.reverts("license: not revocable by arbiter"):
        lm.revoke(cid, b"\x00" * 32, sender=admin)


def test_revoke__stranger_or_holder__reverts(lm, create, buy, stranger, consumer):
    cid = buy(create(revocation=3), consumer)
    for who in (stranger, consumer):
        with ape.reverts("license: not revoker"):
            lm.revoke(cid, b"\x00" * 32, sender=who)


def test_revoke__zero_notice__immediate_and_paused_does_not_stop_it(lm, create, buy, licensor, consumer, admin, chain):
    cid = buy(create(revocation=1), consumer)
    lm.pause(sender=admin)
    tx = lm.revoke(cid, b"\x00" * 32, sender=licensor)
    assert lm.credential(cid).revoked_at == chain.blocks[tx.block_number].timestamp


def test_revoke__new_capsule_owner_is_the_licensor(lm, registry, create, buy, licensor, stranger, consumer, capsule):
    cid = buy(create(revocation=1, notice_period=DAY), consumer)
    registry.transferFrom(licensor, stranger, capsule, sender=licensor)
    with ape.reverts("license: not revoker"):
        lm.revoke(cid, b"\x00" * 32, sender=licensor)
    lm.revoke(cid, b"\x00" * 32, sender=stranger)


# --- transfers (ERC-5192) ----------------------------------------------------------------


def test_transfer__locked_credential__reverts(lm, cred, consumer, stranger):
    cid, _, _ = cred
    assert lm.locked(cid)
    with ape.reverts("license: credential locked"):
        lm.transferFrom(consumer, stranger, cid, sender=consumer)
    with ape.reverts("license: credential locked"):
        lm.safeTransferFrom(consumer, stranger, cid, sender=consumer)
    with ape.reverts("license: credential locked"):
        lm.safeTransferFrom(consumer, stranger, cid, b"x", sender=consumer)


def test_transfer__transferable__moves_holder_and_usage__holder_judged_at_the_time(
    lm, create, buy, consumer, stranger, meter, chain
):
    cid = buy(create(transferable=True, mu_quota=10), consumer)
    at = lm.credential(cid).issued_at
    lm.consume(cid, 4, RESEARCH, at, consumer, sender=meter)
    chain.pending_timestamp += 10
    tx = lm.transferFrom(consumer, stranger, cid, sender=consumer)
    prev, t = lm.last_transfer(cid)
    assert prev == consumer and t == chain.blocks[tx.block_number].timestamp
    assert lm.ownerOf(cid) == stranger and lm.credential(cid).mu_used == 4
    # usage dated before the transfer is the previous holder's, after it the new holder's
    assert lm.authorize(cid, consumer, RESEARCH, at) and not lm.authorize(cid, stranger, RESEARCH, at)
    assert lm.authorize(cid, stranger, RESEARCH, t) and not lm.authorize(cid, consumer, RESEARCH, t)
    assert lm.check_usage(cid, 1, RESEARCH, t, consumer).status == Reject.NOT_HOLDER
    assert lm.check_usage(cid, 1, RESEARCH, at, consumer).status == Reject.OK
    assert lm.check_usage(cid, 7, RESEARCH, t, stranger).status == Reject.QUOTA_EXCEEDED
    with ape.reverts("license: transfer cooldown"):  # one previous holder covers the settlement window
        lm.safeTransferFrom(stranger, consumer, cid, sender=stranger)
    chain.pending_timestamp = t + WINDOW
    lm.safeTransferFrom(stranger, consumer, cid, sender=stranger)
    assert lm.ownerOf(cid) == consumer


def test_transfer__transferable__needs_approval(lm, create, buy, consumer, stranger):
    cid = buy(create(transferable=True), consumer)
    with ape.reverts("erc721: caller is not token owner or approved"):
        lm.transferFrom(consumer, stranger, cid, sender=stranger)
    lm.approve(stranger, cid, sender=consumer)
    lm.transferFrom(consumer, stranger, cid, sender=stranger)
    assert lm.ownerOf(cid) == stranger


def test_transfer__unknown_token__erc721_reason(lm, consumer, stranger):
    with ape.reverts("erc721: invalid token ID"):
        lm.transferFrom(consumer, stranger, 42, sender=consumer)


def test_unconsume__only_meter_and_only_within_the_consuming_transaction(lm, meter, consumer, cred):
    cid, at, _ = cred
    before = lm.credential(cid).mu_used
    with ape.reverts("license: not meter"):
        lm.unconsume(cid, sender=consumer)
    with ape.reverts("license: nothing to undo"):
        lm.unconsume(cid, sender=meter)  # transient undo state never outlives a transaction
    assert lm.consume(cid, 5, RESEARCH, at, consumer, sender=meter).return_value.status == Reject.OK
    assert lm.credential(cid).mu_used == before + 5
    with ape.reverts("license: nothing to undo"):
        lm.unconsume(cid, sender=meter)
