"""Reputation: verified ratings (one per used credential, updatable) and compliance attestations."""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak

ZERO32 = b"\x00" * 32
STD = keccak(text="ISO-42001")


@pytest.fixture(scope="module")
def lm(project, admin):
    return admin.deploy(project.MockLicenseManager)


@pytest.fixture(scope="module")
def reputation(project, admin, registry, lm):
    return admin.deploy(project.Reputation, registry, lm, admin)


@pytest.fixture(scope="module")
def auditor(accounts, reputation, admin):
    a = accounts[8]
    reputation.grantRole(reputation.AUDITOR_ROLE(), a, sender=admin)
    return a


@pytest.fixture
def capsule(mint_capsule, creator):
    return mint_capsule(creator)


@pytest.fixture
def credential(lm, capsule, consumer):
    """Closure: a credential on `capsule` (or another) held by `holder` with `mu_used`."""
    counter = iter(range(1000, 10**6))

    def _make(holder=consumer, mu_used=1, capsule_id=None):
        cid = next(counter)
        lm.set_terms_capsule(cid, capsule if capsule_id is None else capsule_id, sender=holder)
        lm.set_credential(cid, cid, holder, mu_used, sender=holder)
        return cid

    return _make


# --- constructor ------------------------------------------------------------------------------


def test_init__grants_roles_to_admin_only(project, reputation, admin, registry, lm, stranger):
    assert reputation.registry() == registry and reputation.license_manager() == lm
    for role in (reputation.DEFAULT_ADMIN_ROLE(), reputation.AUDITOR_ROLE(), reputation.PAUSER_ROLE()):
        assert reputation.hasRole(role, admin)
        assert not reputation.hasRole(role, stranger)


def test_init__handover_checkable_from_role_events(project, admin, registry, lm, stranger, role_holders):
    """Deployed by `stranger` for `admin`: the deploy transaction's RoleGranted / RoleRevoked
    events alone show that every role is `admin`'s and the deployer keeps none."""
    rep = stranger.deploy(project.Reputation, registry, lm, admin)
    held = role_holders(rep)
    roles = {rep.DEFAULT_ADMIN_ROLE(), rep.AUDITOR_ROLE(), rep.PAUSER_ROLE()}
    assert held == {(bytes(r), admin.address) for r in roles}


def test_init__zero_admin__reverts(project, admin, registry, lm, deploy_reverts):
    deploy_reverts(admin, project.Reputation, registry, lm, "0x" + "00" * 20, reason="reputation: zero admin")


# --- rate -------------------------------------------------------------------------------------


def test_rate__used_credential__counts_and_logs(reputation, capsule, credential, consumer):
    cred = credential()
    tx = reputation.rate(capsule, cred, 4, b"\x01" * 32, sender=consumer)
    assert tuple(reputation.rating(capsule)) == (4, 1)
    assert reputation.stars_of(cred) == 4
    ev = tx.events.filter(reputation.Rated)[0]
    assert (ev.capsule_id, ev.credential_id, ev.rater, ev.stars, ev.review_hash) == (
        capsule,
        cred,
        consumer,
        4,
        b"\x01" * 32,
    )


def test_rate__again__replaces_stars_without_counting_twice(reputation, capsule, credential, consumer):
    cred = credential()
    reputation.rate(capsule, cred, 2, ZERO32, sender=consumer)
    reputation.rate(capsule, cred, 5, ZERO32, sender=consumer)
    assert tuple(reputation.rating(capsule)) == (5, 1)
    reputation.rate(capsule, cred, 1, ZERO32, sender=consumer)
    assert tuple(reputation.rating(capsule)) == (1, 1)


def test_rate__two_credentials__aggregate_sums(reputation, capsule, credential, consumer, stranger):
    reputation.rate(capsule, credential(), 5, ZERO32, sender=consumer)
    reputation.rate(capsule, credential(holder=stranger), 2, ZERO32, sender=stranger)
    assert tuple(reputation.rating(capsule)) == (7, 2)


def test_rate__no_usage__reverts(reputation, capsule, credential, consumer):
    with ape.reverts("reputation: no usage"):
        reputation.rate(capsule, credential(mu_used=0), 5, ZERO32, sender=consumer)


def test_rate__not_holder__reverts(reputation, capsule, credential, stranger):
    with ape.reverts("reputation: not holder"):
        reputation.rate(capsule, credential(), 5, ZERO32, sender=stranger)


def test_rate__unknown_credential__reverts(reputation, capsule, consumer):
    with ape.reverts("reputation: unknown credential"):
        reputation.rate(capsule, 987_654_321, 5, ZERO32, sender=consumer)


def test_rate__credential_on_other_capsule__reverts(reputation, capsule, credential, consumer, mint_capsule, creator):
    other = mint_capsule(creator)
    with ape.reverts("reputation: wrong capsule"):
        reputation.rate(capsule, credential(capsule_id=other), 5, ZERO32, sender=consumer)


@pytest.mark.parametrize("stars", [0, 6, 255])
def test_rate__stars_out_of_range__reverts(reputation, capsule, credential, consumer, stars):
    with ape.reverts("reputation: stars out of range"):
        reputation.rate(capsule, credential(), stars, ZERO32, sender=consumer)


def test_rate__after_credential_transfer__new_holder_replaces_rating(
    reputation, lm, capsule, credential, consumer, stranger
):
    cred = credential()
    reputation.rate(capsule, cred, 1, ZERO32, sender=consumer)
    lm.set_credential(cred, cred, stranger, 3, sender=stranger)
    with ape.reverts("reputation: not holder"):
        reputation.rate(capsule, cred, 5, ZERO32, sender=consumer)
    reputation.rate(capsule, cred, 5, ZERO32, sender=stranger)
    assert tuple(reputation.rating(capsule)) == (5, 1)


def test_rate__paused__reverts_and_unpause_resumes(reputation, capsule, credential, consumer, admin, stranger):
    with ape.reverts("access_control: account is missing role"):
        reputation.pause(sender=stranger)
    reputation.pause(sender=admin)
    cred = credential()
    with ape.reverts("reputation: paused"):
        reputation.rate(capsule, cred, 5, ZERO32, sender=consumer)
    with ape.reverts("reputation: paused"):
        reputation.pause(sender=admin)
    reputation.unpause(sender=admin)
    with ape.reverts("reputation: not paused"):
        reputation.unpause(sender=admin)
    reputation.rate(capsule, cred, 5, ZERO32, sender=consumer)


# --- paid usage and revocation (issue 12, Low: farmed "verified" ratings) ---------------------


def test_rate__sybils_with_free_credentials__cannot_rate(reputation, lm, capsule, accounts):
    """The farm: price-0 terms, one 1-MU credential per sybil. None of them may rate."""
    for i, sybil in enumerate(accounts[8:11]):
        cred = 50_000 + i
        lm.set_terms(cred, capsule, 0, 0, sender=sybil)
        lm.set_credential(cred, cred, sybil, 1, sender=sybil)
        with ape.reverts("reputation: no paid usage"):
            reputation.rate(capsule, cred, 5, ZERO32, sender=sybil)
    assert tuple(reputation.rating(capsule)) == (0, 0)


@pytest.mark.parametrize("price, upfront", [(1, 0), (0, 1), (3, 7)])
def test_rate__terms_that_charge__count(reputation, lm, capsule, consumer, price, upfront):
    cred = 60_000 + price * 10 + upfront
    lm.set_terms(cred, capsule, price, upfront, sender=consumer)
    lm.set_credential(cred, cred, consumer, 1, sender=consumer)
    reputation.rate(capsule, cred, 3, ZERO32, sender=consumer)
    assert tuple(reputation.rating(capsule)) == (3, 1)


def test_rate__upfront_fee_but_no_usage__reverts(reputation, lm, capsule, consumer):
    lm.set_terms(61_000, capsule, 0, 5, sender=consumer)
    lm.set_credential(61_000, 61_000, consumer, 0, sender=consumer)
    with ape.reverts("reputation: no usage"):
        reputation.rate(capsule, 61_000, 3, ZERO32, sender=consumer)


def test_rate__revocation_in_effect__refused_and_rerating_too(reputation, lm, capsule, credential, consumer, chain):
    cred = credential()
    reputation.rate(capsule, cred, 1, ZERO32, sender=consumer)
    lm.set_revoked_at(cred, chain.pending_timestamp, sender=consumer)
    with ape.reverts("reputation: credential revoked"):
        reputation.rate(capsule, cred, 5, ZERO32, sender=consumer)
    fresh = credential()
    lm.set_revoked_at(fresh, chain.pending_timestamp - 1, sender=consumer)
    with ape.reverts("reputation: credential revoked"):
        reputation.rate(capsule, fresh, 5, ZERO32, sender=consumer)
    assert tuple(reputation.rating(capsule)) == (1, 1)


def test_rate__revocation_pending_notice__still_rates(reputation, lm, capsule, credential, consumer, chain):
    """An at-will revocation takes effect after its notice period: until then the holder rates
    (a licensor cannot silence a review by announcing a revocation)."""
    cred = credential()
    lm.set_revoked_at(cred, chain.pending_timestamp + 3_600, sender=consumer)
    reputation.rate(capsule, cred, 2, ZERO32, sender=consumer)
    assert tuple(reputation.rating(capsule)) == (2, 1)


# --- attest / revoke --------------------------------------------------------------------------


def test_attest__auditor__records_and_logs(reputation, capsule, auditor, chain):
    until = chain.pending_timestamp + 86_400
    tx = reputation.attest(capsule, STD, True, b"\x07" * 32, until, sender=auditor)
    aid = tx.return_value
    assert aid == reputation.attestation_count()
    a = reputation.attestation(aid)
    assert (a.capsule_id, a.auditor, a.standard, a.passed, a.report_hash, a.valid_until, a.revoked) == (
        capsule,
        auditor,
        STD,
        True,
        b"\x07" * 32,
        until,
        False,
    )
    assert reputation.attestation_valid(aid)
    ev = tx.events.filter(reputation.Attested)[0]
    assert (ev.attestation_id, ev.capsule_id, ev.auditor, ev.standard, ev.passed, ev.valid_until) == (
        aid,
        capsule,
        auditor,
        STD,
        True,
        until,
    )


def test_attest__expires__no_longer_valid(reputation, capsule, auditor, chain):
    aid = reputation.attest(capsule, STD, True, ZERO32, chain.pending_timestamp + 100, sender=auditor).return_value
    chain.pending_timestamp += 200
    chain.mine()
    assert not reputation.attestation_valid(aid)


def test_attest__failed_audit__never_valid(reputation, capsule, auditor):
    aid = reputation.attest(capsule, STD, False, ZERO32, 0, sender=auditor).return_value
    assert not reputation.attestation_valid(aid)


def test_attest__not_auditor__reverts(reputation, capsule, stranger):
    with ape.reverts("access_control: account is missing role"):
        reputation.attest(capsule, STD, True, ZERO32, 0, sender=stranger)


def test_attest__unknown_capsule__reverts(reputation, auditor):
    with ape.reverts("reputation: unknown capsule"):
        reputation.attest(10**12, STD, True, ZERO32, 0, sender=auditor)


def test_attest__empty_standard__reverts(reputation, capsule, auditor):
    with ape.reverts("reputation: empty standard"):
        reputation.attest(capsule, ZERO32, True, ZERO32, 0, sender=auditor)


def test_attest__valid_until_in_past__reverts(reputation, capsule, auditor, chain):
    with ape.reverts("reputation: already expired"):
        reputation.attest(capsule, STD, True, ZERO32, chain.blocks.head.timestamp - 1, sender=auditor)


def test_revoke__by_auditor__logs_and_invalidates(reputation, capsule, auditor):
    aid = reputation.attest(capsule, STD, True, ZERO32, 0, sender=auditor).return_value
    tx = reputation.revoke_attestation(aid, sender=auditor)
    assert tx.events.filter(reputation.AttestationRevoked)[0].attestation_id == aid
    assert reputation.attestation(aid).revoked and not reputation.attestation_valid(aid)


def test_revoke__by_admin__allowed(reputation, capsule, auditor, admin):
    aid = reputation.attest(capsule, STD, True, ZERO32, 0, sender=auditor).return_value
    reputation.revoke_attestation(aid, sender=admin)
    assert reputation.attestation(aid).revoked


def test_revoke__stranger__reverts(reputation, capsule, auditor, stranger):
    aid = reputation.attest(capsule, STD, True, ZERO32, 0, sender=auditor).return_value
    with ape.reverts("reputation: not auditor"):
        reputation.revoke_attestation(aid, sender=stranger)


def test_revoke__twice__reverts(reputation, capsule, auditor):
    aid = reputation.attest(capsule, STD, True, ZERO32, 0, sender=auditor).return_value
    reputation.revoke_attestation(aid, sender=auditor)
    with ape.reverts("reputation: already revoked"):
        reputation.revoke_attestation(aid, sender=auditor)


def test_revoke__unknown__reverts(reputation, auditor):
    with ape.reverts("reputation: unknown attestation"):
        reputation.revoke_attestation(10**9, sender=auditor)


def test_revoke__while_paused__still_works(reputation, capsule, auditor, admin):
    aid = reputation.attest(capsule, STD, True, ZERO32, 0, sender=auditor).return_value
    reputation.pause(sender=admin)
    reputation.revoke_attestation(aid, sender=auditor)
    assert reputation.attestation(aid).revoked
