"""The derivative path end to end: CapsuleRegistry.mint asks LicenseManager.can_derive for a
parent edge through a credential."""

from __future__ import annotations

import ape
import pytest

from codexfield import scopes

from license_helpers import DAY

DERIV = scopes.mask_of(["research", "derivatives"])
REFUSED = "capsule: credential does not allow derivative"


@pytest.fixture(scope="module", autouse=True)
def wired(registry, lm, admin):
    registry.wire(lm, sender=admin)
    return registry


@pytest.fixture(scope="module")
def deriv_cred(create, buy, consumer):
    """A derivatives credential on the licensor's capsule (share >= 20%), held by the consumer."""
    return buy(create(scope=DERIV, derivative_share_bps=2_000, revocation=2), consumer)


def test_mint_child__credential_with_derivatives_and_share__allowed(
    registry, mint_capsule, consumer, capsule, deriv_cred, lm
):
    assert lm.can_derive(deriv_cred, consumer, capsule, 2_000)
    child = mint_capsule(consumer, kind=2, parents=[(capsule, 2_000)], credentials=[deriv_cred])
    assert registry.ownerOf(child) == consumer
    assert [(p.capsule_id, p.share_bps) for p in registry.parents(child)] == [(capsule, 2_000)]
    child2 = mint_capsule(consumer, kind=2, parents=[(capsule, 10_000)], credentials=[deriv_cred])
    assert registry.parents(child2)[0].share_bps == 10_000


def test_mint_child__share_below_terms__refused(mint_capsule, consumer, capsule, deriv_cred, lm):
    assert not lm.can_derive(deriv_cred, consumer, capsule, 1_999)
    with ape.reverts(REFUSED):
        mint_capsule(consumer, parents=[(capsule, 1_999)], credentials=[deriv_cred])


def test_mint_child__scope_without_derivatives__refused(mint_capsule, create, buy, consumer, capsule, lm):
    cid = buy(create(scope=scopes.mask_of(["research"])), consumer)
    assert not lm.can_derive(cid, consumer, capsule, 10_000)
    with ape.reverts(REFUSED):
        mint_capsule(consumer, parents=[(capsule, 5_000)], credentials=[cid])


def test_mint_child__credential_of_another_holder_or_capsule__refused(
    mint_capsule, licensor, consumer, stranger, capsule, deriv_cred, lm
):
    other = mint_capsule(licensor)
    with ape.reverts(REFUSED):
        mint_capsule(stranger, parents=[(capsule, 5_000)], credentials=[deriv_cred])
    with ape.reverts(REFUSED):
        mint_capsule(consumer, parents=[(other, 5_000)], credentials=[deriv_cred])
    assert not lm.can_derive(999, consumer, capsule, 5_000)


def test_mint_child__expired_credential__refused(mint_capsule, create, buy, consumer, capsule, chain, lm):
    cid = buy(create(scope=DERIV, duration=DAY), consumer)
    mint_capsule(consumer, parents=[(capsule, 100)], credentials=[cid])
    chain.pending_timestamp += DAY
    with ape.reverts(REFUSED):
        mint_capsule(consumer, parents=[(capsule, 100)], credentials=[cid])


def test_mint_child__revoked_credential__refused(mint_capsule, consumer, capsule, deriv_cred, lm, admin):
    lm.revoke(deriv_cred, b"\x00" * 32, sender=admin)  # ARBITER_ON_BREACH: immediate
    with ape.reverts(REFUSED):
        mint_capsule(consumer, parents=[(capsule, 5_000)], credentials=[deriv_cred])


def test_can_derive_many__every_edge_must_pass(lm, create, buy, consumer, capsule, deriv_cred):
    other = buy(create(scope=DERIV, derivative_share_bps=500), consumer)
    good = [(deriv_cred, capsule, 2_000), (other, capsule, 500)]
    assert lm.can_derive_many(consumer, [])
    assert lm.can_derive_many(consumer, good)
    assert not lm.can_derive_many(consumer, good + [(other, capsule, 499)])
    assert not lm.can_derive_many(consumer, [(deriv_cred, capsule + 1, 2_000)] + good)


def test_mint_child__owned_and_licensed_parents_mixed__one_bad_credential_refuses_all(
    registry, mint_capsule, create, buy, licensor, consumer, capsule, deriv_cred
):
    own = mint_capsule(consumer)
    second = mint_capsule(licensor)
    cred2 = buy(create(capsule_id=second, scope=DERIV, derivative_share_bps=1_000), consumer)
    child = mint_capsule(
        consumer, parents=[(capsule, 2_000), (own, 100), (second, 1_000)], credentials=[deriv_cred, 0, cred2]
    )
    assert [tuple(p) for p in registry.parents(child)] == [(capsule, 2_000), (own, 100), (second, 1_000)]
    with ape.reverts(REFUSED):  # the second edge's share is below its terms
        mint_capsule(
            consumer, parents=[(capsule, 2_000), (own, 100), (second, 999)], credentials=[deriv_cred, 0, cred2]
        )
    with ape.reverts("capsule: not parent owner"):
        mint_capsule(consumer, parents=[(capsule, 2_000), (second, 1_000)], credentials=[deriv_cred, 0])


def test_mint_child__sibling_credential_revoked__others_of_the_terms_still_derive(
    mint_capsule, create, buy, consumer, stranger, capsule, lm, admin
):
    tid = create(scope=DERIV, derivative_share_bps=100, revocation=2)
    revoked, kept = buy(tid, consumer), buy(tid, stranger)
    lm.revoke(revoked, b"\x00" * 32, sender=admin)
    assert lm.terms(tid).derivative_share_bps == 100 and lm.terms(tid).notice_period == 0
    assert not lm.can_derive(revoked, consumer, capsule, 100)
    assert lm.can_derive(kept, stranger, capsule, 100)
    mint_capsule(stranger, parents=[(capsule, 100)], credentials=[kept])
    with ape.reverts(REFUSED):
        mint_capsule(consumer, parents=[(capsule, 100)], credentials=[revoked])


def test_mint_child__transferable_credential__the_new_holder_derives(
    mint_capsule, create, buy, consumer, stranger, capsule, lm
):
    cid = buy(create(scope=DERIV, transferable=True), consumer)
    lm.transferFrom(consumer, stranger, cid, sender=consumer)
    assert lm.can_derive(cid, stranger, capsule, 0) and not lm.can_derive(cid, consumer, capsule, 0)
    mint_capsule(stranger, parents=[(capsule, 0)], credentials=[cid])
    with ape.reverts(REFUSED):
        mint_capsule(consumer, parents=[(capsule, 0)], credentials=[cid])
