"""Adversarial integrators against the deployed system: re-entrant ERC-721 receivers, malicious
ERC-1271 wallets (the meter no longer asks them: a contract wallet signs vouchers through a
sigAuth delegate it adds itself), third parties settling for a node, and griefing batches at the
size limits. Each test shows that nothing is lost, nothing is half-applied, and gas stays bounded."""

from __future__ import annotations

import os

import ape
import pytest
from eth_utils import to_checksum_address

from codexfield import scopes
from codexfield.constants import Reject

from support.terms import terms_tuple  # pay per MU, inference + research, revocable

INFERENCE = scopes.mask_of(["inference"])


@pytest.fixture(scope="module")
def capsule(cf, creator):
    return cf.mint(os.urandom(32), kind="model", sender=creator)


@pytest.fixture(scope="module")
def open_terms(cf, creator, capsule, cf_usdc):
    return cf.licenses.create_terms(
        terms_tuple(capsule, cf_usdc.address, transferable=True), sender=creator
    ).return_value


@pytest.fixture(scope="module")
def receiver(project, admin):
    return admin.deploy(project.EvilReentrantReceiver)


# ---------------------------------------------------------------------------------- re-entrancy


def test_receiver__reentering_the_registry_in_the_hook__is_blocked(cf, creator, stranger, receiver, capsule):
    """CapsuleRegistry defines `transferFrom` / `safeTransferFrom` itself (not the module's
    exports), so the receiver hook runs under the registry's nonreentrancy lock: a re-entrant
    transfer fails and the capsule stays with the receiver, balances consistent."""
    reg = cf.registry
    receiver.set_attack(
        reg, reg.transferFrom.encode_input(receiver.address, stranger.address, capsule), False, sender=creator
    )
    reg.safeTransferFrom(creator, receiver, capsule, sender=creator)
    assert (receiver.attempts(), receiver.successes()) == (1, 0)
    assert reg.ownerOf(capsule) == receiver.address
    assert (reg.balanceOf(receiver), reg.balanceOf(stranger)) == (1, 0)


def test_receiver__reentry_into_registry_mint__is_blocked(cf, creator, receiver, capsule):
    reg = cf.registry
    next_id = reg.next_id()
    receiver.set_attack(reg, reg.mint.encode_input(1, os.urandom(32), [], [], ""), False, sender=creator)
    reg.safeTransferFrom(creator, receiver, capsule, sender=creator)
    assert (receiver.attempts(), receiver.successes()) == (1, 0)
    assert reg.next_id() == next_id and reg.ownerOf(capsule) == receiver.address and reg.balanceOf(receiver) == 1


def test_receiver__failing_reentry_in_strict_mode__reverts_the_whole_transfer(cf, creator, receiver, capsule):
    reg = cf.registry
    # after the move the creator no longer owns the capsule: this re-entrant transfer fails
    receiver.set_attack(
        reg, reg.transferFrom.encode_input(creator.address, receiver.address, capsule), True, sender=creator
    )
    with ape.reverts("evil: re-entry blocked"):
        reg.safeTransferFrom(creator, receiver, capsule, sender=creator)
    assert reg.ownerOf(capsule) == creator.address  # nothing half-applied
    assert receiver.attempts() == 0 and reg.balanceOf(receiver) == 0


def test_receiver__reentering_the_license_manager_on_credential_transfer__is_blocked(
    cf, consumer, receiver, open_terms
):
    lm = cf.licenses
    cred = cf.purchase(open_terms, sender=consumer)
    issued = lm.credentials_issued(open_terms)
    receiver.set_attack(lm, lm.purchase.encode_input(open_terms, receiver.address, 0), False, sender=consumer)
    lm.safeTransferFrom(consumer, receiver, cred, sender=consumer)
    assert (receiver.attempts(), receiver.successes()) == (1, 0)
    assert lm.ownerOf(cred) == receiver.address
    assert lm.credentials_issued(open_terms) == issued
    # and strict: the credential stays with the consumer
    cred2 = cf.purchase(open_terms, sender=consumer)
    receiver.set_attack(lm, lm.revoke.encode_input(cred2, b"\x00" * 32), True, sender=consumer)
    with ape.reverts("evil: re-entry blocked"):
        lm.safeTransferFrom(consumer, receiver, cred2, sender=consumer)
    assert lm.ownerOf(cred2) == consumer.address
    assert lm.credential(cred2).revoked_at == 0


def test_receiver__cross_contract_reentry_during_a_capsule_transfer__sees_no_half_state(
    cf, creator, receiver, capsule, open_terms, cf_usdc
):
    """During the registry's transfer hook the receiver buys a credential on the capsule: the
    LicenseManager reads the registry, whose lock is held, so the purchase fails whole."""
    lm = cf.licenses
    issued = lm.credentials_issued(open_terms)
    receiver.set_attack(lm, lm.purchase.encode_input(open_terms, receiver.address, 0), False, sender=creator)
    cf.registry.safeTransferFrom(creator, receiver, capsule, sender=creator)
    assert receiver.attempts() == 1
    assert lm.credentials_issued(open_terms) == issued + receiver.successes()
    assert lm.balanceOf(receiver) == receiver.successes()


# ---------------------------------------------------------------------------------- ERC-1271 wallets


@pytest.fixture(scope="module")
def evil_wallet(project, admin):
    return admin.deploy(project.EvilERC1271Wallet, 0)


@pytest.fixture(scope="module")
def wallet_setup(cf, evil_wallet, consumer, stranger, creator, capsule, cf_usdc, serving_node):
    """A credential held by the evil wallet and one by an honest consumer, both funded."""
    t = cf.licenses.create_terms(terms_tuple(capsule, cf_usdc.address), sender=creator).return_value
    wcred = cf.purchase(t, evil_wallet, sender=stranger)
    ccred = cf.purchase(t, sender=consumer)
    cf_usdc.mint(stranger, 10**9, sender=stranger)
    cf_usdc.mint(consumer, 10**9, sender=consumer)
    cf.deposit("USDC", 10**8, evil_wallet, sender=stranger)
    cf.deposit("USDC", 10**8, sender=consumer)
    return wcred, ccred


def _pair(cf, cred, node, mu, signer=None):
    v = cf.voucher(cred, node, mu=mu, calls=1)
    return v, (cf.sign(v, signer) if signer is not None else os.urandom(65))


def test_wallet_approving_everything__is_never_asked(cf, evil_wallet, wallet_setup, consumer, node):
    """Issue 12: a live ERC-1271 check is the void-after-service attack (the wallet can stop
    approving once served), so the meter takes no ERC-1271 signature for vouchers at all."""
    wcred, ccred = wallet_setup
    before = cf.escrow(consumer, "USDC"), cf.escrow(evil_wallet, "USDC")
    res = cf.ingest([_pair(cf, wcred, node, 1000), _pair(cf, ccred, node, 10, consumer)], sender=node)
    assert (res.applied, [r[2] for r in res.rejected]) == (1, [Reject.BAD_SIGNATURE])
    assert cf.escrow(evil_wallet, "USDC") == before[1]
    assert cf.escrow(consumer, "USDC") == before[0] - 10 * 2


def test_wallet_that_reverts__is_rejected_and_the_batch_goes_on(cf, evil_wallet, wallet_setup, consumer, node):
    wcred, ccred = wallet_setup
    evil_wallet.set_mode(1, sender=consumer)
    res = cf.ingest([_pair(cf, wcred, node, 10), _pair(cf, ccred, node, 10, consumer)], sender=node)
    assert res.applied == 1 and res.rejected == [(wcred, node.address, Reject.BAD_SIGNATURE)]
    assert cf.settled(wcred, node) == (0, 0, 0, 0)


def test_wallet_stopping_approval_after_service__cannot_void_its_vouchers(
    cf, project, admin, wallet_setup, consumer, stranger, creator, capsule, cf_usdc, node, chain
):
    """Issue 12 High 2 on the deployed system: a contract wallet signs through a sigAuth delegate it
    adds itself; once served, revoking that delegate no longer voids the voucher."""
    from eth_account import Account

    wallet = admin.deploy(project.MockERC1271Wallet, consumer)
    t = cf.licenses.create_terms(terms_tuple(capsule, cf_usdc.address), sender=creator).return_value
    cred = cf.purchase(t, wallet, sender=stranger)
    cf.deposit("USDC", 10**6, wallet, sender=stranger)
    hot = Account.create()
    sig_auth = b"sigAuth".ljust(32, b"\0")
    wallet.add_delegate(cf.identity, sig_auth, hot.address, 86400, sender=consumer)
    v = cf.voucher(cred, node, mu=100, calls=1)
    sig = cf.sign(v, hot.key)
    chain.pending_timestamp += 10
    wallet.revoke_delegate(cf.identity, sig_auth, hot.address, sender=consumer)
    assert cf.ingest([(v, sig)], sender=node).applied == 1
    assert cf.settled(cred, node)[0] == 100


def test_third_party_settling_for_a_node__is_refused(cf, wallet_setup, consumer, stranger, node, chain):
    """Issue 12 High 1 on the deployed system: only the node (or its operator) settles, so no one
    else can push forged failures into its usage score."""
    _, ccred = wallet_setup
    v = cf.voucher(ccred, node, mu=0, calls=40, failures=40)
    epoch = cf.meter.current_epoch()
    before = cf.meter.node_usage(node, epoch)
    with ape.reverts("meter: not node or operator"):
        cf.ingest([(v, cf.sign(v, consumer))], sender=stranger)
    assert cf.meter.node_usage(node, epoch) == before


def test_wallet_returning_a_wrong_magic__is_rejected(cf, evil_wallet, wallet_setup, node):
    wcred, _ = wallet_setup
    evil_wallet.set_mode(3, sender=node)
    escrow = cf.escrow(evil_wallet, "USDC")
    res = cf.ingest([_pair(cf, wcred, node, 10), _pair(cf, wcred, node, 10)], sender=node)
    assert res.applied == 0 and {r[2] for r in res.rejected} == {Reject.BAD_SIGNATURE}
    assert cf.escrow(evil_wallet, "USDC") == escrow and cf.settled(wcred, node) == (0, 0, 0, 0)


def test_wallet_burning_gas__cannot_make_a_batch_half_apply(cf, evil_wallet, wallet_setup, consumer, node):
    wcred, ccred = wallet_setup
    evil_wallet.set_mode(2, sender=node)
    escrow = cf.escrow(consumer, "USDC")
    res = cf.ingest([_pair(cf, ccred, node, 10, consumer), _pair(cf, wcred, node, 10)], sender=node)
    assert res.applied == 1 and res.rejected == [(wcred, node.address, Reject.BAD_SIGNATURE)]
    assert cf.settled(ccred, node)[0] == 10 and cf.escrow(consumer, "USDC") == escrow - 20
    assert cf.settled(wcred, node) == (0, 0, 0, 0)


def test_wallet_burning_gas__costs_the_node_bounded_gas(cf, evil_wallet, wallet_setup, consumer, node):
    """Found by this suite (a gas-burning wallet made a 2-voucher batch cost ~29.6M gas); first
    fixed by capping the ERC-1271 call, now impossible: the meter never calls the wallet."""
    wcred, ccred = wallet_setup
    evil_wallet.set_mode(2, sender=node)
    res = cf.ingest([_pair(cf, ccred, node, 10, consumer), _pair(cf, wcred, node, 10)], sender=node)
    assert res.receipt.gas_used < 500_000, res.receipt.gas_used


# ---------------------------------------------------------------------------------- griefing batches


def test_64_invalid_vouchers_on_64_channels__apply_nothing_with_bounded_gas(cf, wallet_setup, consumer, node):
    _, ccred = wallet_setup
    escrow = cf.escrow(consumer, "USDC")
    batch = []
    for i in range(64):
        v = cf.voucher(ccred, node, mu=10**6 + i, calls=1)
        batch.append((v, os.urandom(65)))
    res = cf.ingest(batch, sender=node)
    assert res.applied == 0 and len(res.rejected) == 64
    assert {r[2] for r in res.rejected} == {Reject.BAD_SIGNATURE}
    assert cf.escrow(consumer, "USDC") == escrow
    assert all(cf.settled(ccred, v.node) == (0, 0, 0, 0) for v, _ in batch[:4])
    gas = res.receipt.gas_used
    # per invalid voucher: calldata + ecrecover + LicenseManager.consume then unconsume (the
    # meter consumes optimistically, then rolls back on a bad signature) + one event; measured
    # ≈ 28.8k each (1.84M for the batch), linear in the batch and capped by MAX_BATCH
    assert gas < 64 * 32_000, gas


def test_64_batch_with_one_valid_voucher__applies_exactly_that_one(cf, wallet_setup, consumer, node):
    _, ccred = wallet_setup
    batch = [(cf.voucher(ccred, node, mu=5, calls=1), os.urandom(65)) for _ in range(63)]
    good = cf.voucher(ccred, node, mu=7, calls=1)
    batch.insert(31, (good, cf.sign(good, consumer)))
    res = cf.ingest(batch, sender=node)
    assert res.applied == 1 and len(res.rejected) == 63
    assert cf.settled(ccred, node)[0] == 7


def test_batch_above_64__is_refused_whole(cf, wallet_setup, consumer, node):
    _, ccred = wallet_setup
    v = cf.voucher(ccred, node, mu=1, calls=1)
    # ape refuses to encode 65 vouchers for a Voucher[64] argument, or the meter reverts: either way
    # nothing is sent or applied (checked below), whichever layer says no.
    with pytest.raises(Exception):  # noqa: B017
        cf.ingest([(v, cf.sign(v, consumer))] * 65, sender=node)
    assert cf.settled(ccred, node) == (0, 0, 0, 0)


def test_128_reports__one_bad_report__reverts_the_whole_batch(cf, admin, reporter, node, chain):
    staking, cdx = cf.staking, cf.test_token("CDX")
    stake = staking.params().min_stake
    if int(staking.node(node).status) == 0:
        cdx.mint(node, stake, sender=node)
        cdx.approve(staking, stake, sender=node)
        staking.register_node("https://n", 1, b"eu\x00\x00\x00\x00\x00\x00", "0x" + "00" * 20, stake, sender=node)
    epoch = staking.current_epoch()
    unknown = [(to_checksum_address(os.urandom(20)), 10, 10, 50) for _ in range(127)]
    with ape.reverts("poa: unknown node"):
        staking.submit_reports(epoch, [(node.address, 10, 10, 50)] + unknown, sender=reporter)
    with ape.reverts("poa: duplicate report"):
        staking.submit_reports(epoch, [(node.address, 10, 10, 50)] * 128, sender=reporter)
    assert len(staking.reports(epoch, node)) == 0  # the valid first report was not kept
    with ape.reverts():
        staking.submit_reports(epoch, [(node.address, 10, 10, 50)] * 129, sender=reporter)
    tx = staking.submit_reports(epoch, [(node.address, 10, 10, 50)], sender=reporter)
    assert len(staking.reports(epoch, node)) == 1 and tx.gas_used < 150_000
