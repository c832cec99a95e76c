"""Issue 12, Medium 4 and 7, against the system as `deploy_system` wires it: governance (the
admin) cannot credit itself, re-wire the creditors or reach a vault or a claimable, and neither
a router pause nor a delisting stops the wired creditors; a FLAGGED capsule takes no new
derivatives and its state history answers `state_at`."""

from __future__ import annotations

import os

import ape
import pytest
from eth_utils import keccak

from codexfield.constants import CapsuleState

CREDITOR = keccak(text="CREDITOR")


@pytest.fixture(scope="module")
def capsule(cf, creator):
    return cf.mint(os.urandom(32), kind="model", sender=creator)


def test_router__wired_by_deploy_to_the_license_manager_and_the_meter(cf):
    assert (cf.router.license_manager(), cf.router.usage_meter()) == (cf.licenses.address, cf.meter.address)
    [ev] = list(cf.router.Wired.range(0, ape.chain.blocks.head.number + 1))
    assert (ev.license_manager, ev.usage_meter) == (cf.licenses.address, cf.meter.address)
    assert cf.registry.license_manager() == cf.licenses.address


def test_admin__grants_itself_credit_and_credits_unsent_tokens__fails(cf, cf_usdc, admin, creator, consumer, capsule):
    cf_usdc.mint(consumer, 1_000, sender=consumer)
    cf.pay(capsule, "USDC", 1_000, sender=consumer)
    before = (cf.router.vault(capsule, cf_usdc), cf_usdc.balanceOf(cf.router), cf_usdc.balanceOf(admin))

    cf.router.grantRole(CREDITOR, admin, sender=admin)
    with ape.reverts("royalty: not creditor"):
        cf.router.credit(capsule, cf_usdc, 10**12, sender=admin)
    with ape.reverts("royalty: already wired"):
        cf.router.wire(admin, admin, sender=admin)
    with ape.reverts("capsule: already wired"):
        cf.registry.wire(admin, sender=admin)
    with ape.reverts("royalty: not owner"):
        cf.router.claim(capsule, cf_usdc, admin, sender=admin)
    cf.router.pause(sender=admin)
    cf.router.set_token_allowed(cf_usdc, False, sender=admin)
    with ape.reverts("royalty: not creditor"):
        cf.router.credit(capsule, cf_usdc, 1, sender=admin)

    assert (cf.router.vault(capsule, cf_usdc), cf_usdc.balanceOf(cf.router), cf_usdc.balanceOf(admin)) == before
    assert cf.claim(capsule, "USDC", sender=creator) == 1_000  # paused and delisted: the owner still claims


def test_flagged_capsule__no_new_derivative__history_kept(cf, admin, creator, capsule, chain):
    t_before = chain.blocks.head.timestamp
    chain.pending_timestamp += 10
    tx = cf.registry.set_state(capsule, CapsuleState.FLAGGED, b"\x01" * 32, sender=admin)
    flagged_at = chain.blocks[tx.block_number].timestamp
    with ape.reverts("capsule: parent flagged"):
        cf.registry.mint(1, os.urandom(32), [(capsule, 100)], [], "", sender=creator)
    assert cf.registry.state_at(capsule, t_before) == CapsuleState.ACTIVE
    assert cf.registry.state_at(capsule, flagged_at) == CapsuleState.FLAGGED
