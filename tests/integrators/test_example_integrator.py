"""contracts/examples/PayPerInference.sol (compiled by ape-solidity) against the Vyper system on anvil."""

from __future__ import annotations

import os

import ape
import pytest

from codexfield import scopes

INFERENCE = scopes.mask_of(["inference"])
UPFRONT = 5 * 10**6


@pytest.fixture(scope="module")
def capsule(cf, creator):
    return cf.mint(os.urandom(32), kind="model", sender=creator)


@pytest.fixture(scope="module")
def terms(cf, creator, capsule):
    return cf.publish_terms(
        f'license "app" for capsule {capsule}\nprice 0.001 USDC per MU, upfront 5 USDC\nmeter gpu.second\nallow inference\n',
        sender=creator,
    )


@pytest.fixture(scope="module")
def app(project, admin, cf, cf_usdc):
    return admin.deploy(project.PayPerInference, cf.licenses, cf.router, cf_usdc)


@pytest.fixture(scope="module")
def user(accounts, cf_usdc, app):
    u = accounts[9]
    cf_usdc.mint(u, 100 * 10**6, sender=u)
    cf_usdc.approve(app, 2**256 - 1, sender=u)
    return u


def test_buy_access__mints_the_credential_to_the_user__and_credits_the_capsule(cf, app, user, cf_usdc, terms, capsule):
    tx = app.buyAccess(terms, UPFRONT, sender=user)
    cred = tx.return_value
    assert cf.licenses.ownerOf(cred) == user.address
    assert app.credentialOf(user, terms) == cred
    assert cf.royalties(capsule, "USDC")["vault"] == UPFRONT
    assert cf_usdc.balanceOf(app) == 0 and cf_usdc.allowance(app, cf.licenses) == 0
    assert app.canInfer(user, cred, INFERENCE)
    assert not app.canInfer(app, cred, INFERENCE)  # the app itself holds nothing
    [ev] = tx.decode_logs(app.AccessBought)
    assert (ev.user, ev.termsId, ev.credentialId, ev.paid) == (user.address, terms, cred, UPFRONT)


def test_buy_access__upfront_above_the_users_max__reverts_and_moves_nothing(app, user, cf_usdc, terms):
    before = cf_usdc.balanceOf(user)
    with ape.reverts():
        app.buyAccess(terms, UPFRONT - 1, sender=user)
    assert cf_usdc.balanceOf(user) == before


def test_tip__pays_the_capsule_vault_through_the_router(cf, app, user, cf_usdc, capsule, creator):
    app.tip(capsule, 123_456, sender=user)
    assert cf.royalties(capsule, "USDC")["vault"] == 123_456
    assert cf_usdc.balanceOf(app) == 0
    assert cf.claim(capsule, "USDC", sender=creator) == 123_456


def test_tip__unknown_capsule__reverts_with_the_router_reason(app, user):
    with ape.reverts("royalty: unknown capsule"):
        app.tip(10**9, 1, sender=user)


def test_bought_credential__meters_usage_like_any_other(cf, app, user, cf_usdc, terms, capsule, node, serving_node):
    cred = app.buyAccess(terms, UPFRONT, sender=user).return_value
    cf.deposit("USDC", 10**6, sender=user)
    v = cf.voucher(cred, node, mu=100, calls=2)
    assert cf.ingest([(v, cf.sign(v, user))], sender=node).applied == 1
    assert cf.settled(cred, node) == (100, 2, 0, 0)
