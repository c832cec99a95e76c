"""Fixtures for the LicenseManager tests: a wired LicenseManager, a revenue sink, terms builders."""

from __future__ import annotations

import pytest

from license_helpers import WINDOW, terms_tuple


@pytest.fixture(scope="session")
def meter(accounts):
    """An account standing in for the UsageMeter (the only caller of `consume`)."""
    return accounts[8]


@pytest.fixture(scope="module")
def sink(project, admin):
    return admin.deploy(project.MockRevenueSink)


@pytest.fixture(scope="module")
def lm(project, admin, registry, sink, meter):
    c = admin.deploy(project.LicenseManager, registry, admin, WINDOW)
    c.wire(meter, sink, sender=admin)
    return c


@pytest.fixture(scope="module")
def capsule(mint_capsule, licensor):
    return mint_capsule(licensor, kind=2)


@pytest.fixture(scope="module")
def create(lm, licensor, capsule, usdc):
    """Closure: create terms on `capsule` (licensor) with overrides; returns the terms id."""

    def _create(sender=None, capsule_id=None, token=None, **kw):
        t = terms_tuple(capsule if capsule_id is None else capsule_id, usdc if token is None else token, **kw)
        return lm.create_terms(t, sender=sender or licensor).return_value

    return _create


@pytest.fixture(scope="module")
def buy(lm, usdc):
    """Closure: fund and approve `buyer`, purchase under `terms_id` for `holder`; returns the credential id."""

    def _buy(terms_id, buyer, holder=None, max_upfront=None, token=None):
        tok = token or usdc
        fee = lm.terms(terms_id).upfront_fee
        if fee:
            tok.mint(buyer, fee, sender=buyer)
            tok.approve(lm, fee, sender=buyer)
        mx = fee if max_upfront is None else max_upfront
        return lm.purchase(terms_id, holder or buyer, mx, sender=buyer).return_value

    return _buy


@pytest.fixture(scope="module", autouse=True)
def _deployed(lm, sink, capsule, create, buy, meter, usdc, registry, admin, licensor, consumer, stranger, arbiter):
    """Build every module fixture before ape's per-test isolation starts (no costly rebasing)."""
    return lm
