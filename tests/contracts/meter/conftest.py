"""A wired system for UsageMeter tests: registry, licenses, router, meter (+ identity)."""

from __future__ import annotations

import os
import time

import pytest
from eth_account import Account  # noqa: F401

from codexfield import scopes
from codexfield.sdk.metering import Domain, Voucher, sign_voucher

from meter_helpers import EPOCH, FEE_BPS, NODE_PRICE, PRICE, THAW, terms_tuple  # noqa: F401


class System:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture(scope="module")
def system(project, admin, creator, licensor, usdc, chain, accounts):
    registry = admin.deploy(project.CapsuleRegistry, admin, 500)
    lm = admin.deploy(project.LicenseManager, registry, admin)
    router = admin.deploy(project.RoyaltyRouter, registry, admin)
    identity = admin.deploy(project.IdentityRegistry)
    meter = admin.deploy(project.UsageMeter, lm, router, identity, admin, EPOCH, chain.pending_timestamp - 10, THAW,
                         FEE_BPS)
    registry.wire(lm, sender=admin)
    lm.set_revenue_sink(router, sender=admin)
    lm.set_meter(meter, sender=admin)
    router.wire(lm, meter, sender=admin)
    router.set_token_allowed(usdc, True, sender=admin)
    capsule = registry.mint(2, os.urandom(32), [], [], "", sender=licensor).return_value
    return System(registry=registry, lm=lm, router=router, meter=meter, identity=identity, usdc=usdc,
                  capsule=capsule, domain=Domain.of(meter))


@pytest.fixture(scope="module")
def make_terms(system, licensor):
    def _make(**kw):
        tx = system.lm.create_terms(terms_tuple(system.capsule, system.usdc, **kw), sender=licensor)
        return tx.return_value

    return _make


@pytest.fixture(scope="module")
def consumer_key():
    return Account.create()


@pytest.fixture(scope="module")
def fund(system, admin):
    """Closure: give `who` tokens and deposit `amount` into its escrow."""

    def _fund(who, amount):
        system.usdc.mint(who, amount, sender=admin)
        system.usdc.approve(system.meter, amount, sender=who)
        system.meter.deposit(system.usdc, amount, who, sender=who)

    return _fund


@pytest.fixture(scope="module")
def buy(system, make_terms):
    """Closure: `buy(holder, payer=None, **terms)` -> credential id."""

    def _buy(holder, payer=None, **kw):
        t = make_terms(**kw)
        payer = payer or holder
        return system.lm.purchase(t, holder, 2**255, sender=payer).return_value

    return _buy


@pytest.fixture(scope="module")
def voucher(system, node):
    """Closure: a Voucher for (credential, node) with the given cumulative counters."""

    def _v(credential_id, mu, calls=1, failures=0, latency=10, *, purpose=None, node_addr=None, node_price=NODE_PRICE,
           deadline=None):
        purpose = scopes.mask_of(["inference"]) if purpose is None else purpose
        return Voucher(credential_id=credential_id, node=str(node_addr or node.address), purpose=purpose,
                       cumulative_mu=mu, cumulative_calls=calls, cumulative_failures=failures,
                       cumulative_latency_ms=latency, node_price_per_mu=node_price,
                       deadline=deadline if deadline is not None else int(time.time()) + 10**8)

    return _v


@pytest.fixture(scope="module")
def sign(system):
    def _sign(v: Voucher, key) -> bytes:
        """Sign with an ape test account, an eth-account LocalAccount, or a raw key."""
        raw = getattr(key, "private_key", None) or getattr(key, "key", None) or key
        return sign_voucher(v, system.domain, raw)

    return _sign

