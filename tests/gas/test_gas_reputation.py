"""Gas of Reputation's hot operations (DESIGN §6 sets no target for them: rows carry null)."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from gasrows import record


@pytest.fixture(scope="module")
def setup(project, admin, registry, consumer, mint_capsule, creator):
    lm = admin.deploy(project.MockLicenseManager)
    rep = admin.deploy(project.Reputation, registry, lm, admin)
    capsule = mint_capsule(creator)
    for cred in (1, 2):
        lm.set_terms_capsule(cred, capsule, sender=admin)
        lm.set_credential(cred, cred, consumer, 10, sender=admin)
    return rep, capsule


def test_gas__rate_first_and_update(setup, consumer):
    rep, capsule = setup
    first = rep.rate(capsule, 1, 5, b"\x01" * 32, sender=consumer).gas_used
    record("reputation", "reputation rate (first rating of a capsule)", first, None)
    again = rep.rate(capsule, 1, 3, b"\x02" * 32, sender=consumer).gas_used
    record("reputation", "reputation rate (update)", again, None)
    # First: two fresh slots (aggregate, rated) 44k + reading a whole Credential (6 cold slots) and
    # Terms (16 cold slots, ~34k) from the license manager. An update skips the Terms read.
    assert 0 < again < 60_000 and first < 130_000


def test_gas__attest_and_revoke(setup, admin):
    rep, capsule = setup
    tx = rep.attest(capsule, keccak(text="ISO-42001"), True, b"\x07" * 32, 0, sender=admin)
    record("reputation", "reputation attest", tx.gas_used, None)
    rv = rep.revoke_attestation(tx.return_value, sender=admin)
    record("reputation", "reputation revoke_attestation", rv.gas_used, None)
    assert tx.gas_used < 150_000 and rv.gas_used < 32_000  # attest: 5 fresh slots (4 + counter)
