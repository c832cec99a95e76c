"""A wired system for UsageMeter tests: registry, licenses, router, meter, identity and AccessStaking
(the node is registered with the minimum stake, so it `serves`)."""

from __future__ import annotations

import os

import pytest

from codexfield import poa, scopes
from codexfield.sdk.metering import Domain, Voucher

from meter_helpers import EPOCH, FEE_BPS, NODE_PRICE, PRICE, THAW, WINDOW, terms_tuple  # noqa: F401
from support.signers import fresh
from support.system import register_node
from support.vouchers import sign as sign_with
from support.vouchers import voucher as build_voucher


class System:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture(scope="module")
def system(project, admin, creator, licensor, usdc, chain, accounts, node):
    registry = admin.deploy(project.CapsuleRegistry, admin, 500)
    lm = admin.deploy(project.LicenseManager, registry, admin, WINDOW)
    router = admin.deploy(project.RoyaltyRouter, registry, admin)
    identity = admin.deploy(project.IdentityRegistry)
    stake = admin.deploy(project.MockERC20, "Stake", "STK", 18)
    reward = admin.deploy(project.MockERC20, "Reward", "RWD", 18)
    genesis = chain.pending_timestamp - 10
    staking = admin.deploy(
        project.AccessStaking, stake, reward, admin, genesis, EPOCH, poa.DEFAULT_PARAMS.as_tuple(), []
    )
    meter = admin.deploy(project.UsageMeter, lm, router, identity, admin, EPOCH, genesis, WINDOW, THAW, FEE_BPS)
    registry.wire(lm, sender=admin)
    router.wire(lm, meter, sender=admin)
    lm.wire(meter, router, sender=admin)
    meter.wire(staking, sender=admin)
    router.set_token_allowed(usdc, True, sender=admin)
    capsule = registry.mint(2, os.urandom(32), [], [], "", sender=licensor).return_value
    sys_ = System(
        registry=registry,
        lm=lm,
        router=router,
        meter=meter,
        identity=identity,
        usdc=usdc,
        staking=staking,
        stake=stake,
        capsule=capsule,
        domain=Domain.of(meter),
    )
    sys_.register = lambda who: register_node(sys_.staking, sys_.stake, who)  # minimum stake: it then `serves`
    sys_.register(node)
    return sys_


@pytest.fixture(scope="module")
def make_terms(system, licensor):
    def _make(**kw):
        tx = system.lm.create_terms(terms_tuple(system.capsule, system.usdc, **kw), sender=licensor)
        return tx.return_value

    return _make


@pytest.fixture(scope="module")
def consumer_key():
    return fresh()


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
def voucher(system, node, consumer, chain):
    """Closure: a Voucher for (credential, node, payer) with the given cumulative counters;
    `payer` defaults to the credential's holder, `issued_at` to the head block's time."""

    def _v(
        credential_id,
        mu,
        calls=1,
        failures=0,
        latency=10,
        *,
        purpose=None,
        node_addr=None,
        node_price=NODE_PRICE,
        deadline=None,
        payer=None,
        issued_at=None,
    ):
        purpose = scopes.mask_of(["inference"]) if purpose is None else purpose
        if payer is None:
            try:
                payer = system.lm.ownerOf(credential_id)
            except Exception:
                payer = consumer.address
        at = max(chain.blocks.head.timestamp, chain.pending_timestamp - 1) if issued_at is None else issued_at
        return build_voucher(
            credential_id,
            node_addr or node,
            payer,
            mu,
            calls,
            failures,
            latency,
            purpose=purpose,
            node_price=node_price,
            issued_at=at,
            deadline=deadline,
        )

    return _v


@pytest.fixture(scope="module")
def sign(system):
    def _sign(v: Voucher, key) -> bytes:
        """Sign with an ape test account, an eth-account LocalAccount, or a raw key."""
        return sign_with(v, system.domain, key)

    return _sign
