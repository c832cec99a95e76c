"""The stateless shared modules (contracts/modules/sig.vy, erc20_exact.vy, lineage.vy, masks.vy),
pinned through the MockModules harness that exposes them."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ZERO = "0x0000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def mods(project, admin):
    return admin.deploy(project.MockModules)


@pytest.fixture(scope="module")
def signer():
    return Account.create()


def _sig(account, digest: bytes):
    s = Account.unsafe_sign_hash(digest, account.key)
    return s.v, s.r, s.s


# ---- sig.vy --------------------------------------------------------------------------------


def test_sig__half_n__is_the_secp256k1_half_order(mods):
    assert mods.half_n() == N // 2


def test_recover__good_signature__returns_signer(mods, signer):
    h = keccak(b"codexfield")
    v, r, s = _sig(signer, h)
    assert mods.recover(h, v, r, s) == signer.address


def test_recover__high_s_twin__returns_zero(mods, signer):
    h = keccak(b"twin")
    v, r, s = _sig(signer, h)
    # The malleable twin (n - s, flipped v) recovers the same key in ecrecover; sig refuses it.
    assert mods.recover(h, 55 - v, r, N - s) == ZERO


@pytest.mark.parametrize("v", [0, 1, 26, 29, 255])
def test_recover__v_outside_27_28__returns_zero(mods, signer, v):
    h = keccak(b"v")
    _, r, s = _sig(signer, h)
    assert mods.recover(h, v, r, s) == ZERO


def test_recover__zero_r_or_zero_s__returns_zero(mods, signer):
    h = keccak(b"zero")
    v, r, s = _sig(signer, h)
    assert mods.recover(h, v, 0, s) == ZERO
    assert mods.recover(h, v, r, 0) == ZERO


def test_recover__r_at_or_above_n__returns_zero(mods, signer):
    h = keccak(b"r")
    v, _, s = _sig(signer, h)
    assert mods.recover(h, v, N, s) == ZERO
    assert mods.recover(h, v, N + 1, s) == ZERO


def test_recover_packed__65_bytes__returns_signer(mods, signer):
    h = keccak(b"packed")
    v, r, s = _sig(signer, h)
    packed = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    assert mods.recover_packed(h, packed) == signer.address


def test_recover_packed__compact_64_bytes__returns_zero(mods, signer):
    h = keccak(b"compact")
    v, r, s = _sig(signer, h)
    assert mods.recover_packed(h, r.to_bytes(32, "big") + s.to_bytes(32, "big")) == ZERO


# ---- erc20_exact.vy -------------------------------------------------------------------------


def test_transfer_from__standard_token__reports_exact_receipt(project, mods, admin, consumer):
    token = admin.deploy(project.MockERC20, "T", "T", 18)
    token.mint(consumer, 1_000, sender=admin)
    token.approve(mods, 400, sender=consumer)
    ok, received, balance = mods.transfer_from.call(token, mods, 400, sender=consumer)
    assert (ok, received, balance) == (True, 400, 400)


def test_transfer_from__fee_on_transfer_token__reports_the_short_receipt(project, mods, admin, consumer):
    token = admin.deploy(project.MockFeeOnTransferToken, 100)  # 1% fee
    token.mint(consumer, 10_000, sender=admin)
    token.approve(mods, 10_000, sender=consumer)
    ok, received, balance = mods.transfer_from.call(token, mods, 10_000, sender=consumer)
    assert ok is True
    assert received == 9_900 and balance == 9_900


def test_transfer_from__token_returning_false__reports_failure(project, mods, admin, consumer):
    token = admin.deploy(project.MockFalseToken)
    token.mint(consumer, 1_000, sender=admin)
    token.refuse(True, sender=admin)
    ok, received, _ = mods.transfer_from.call(token, mods, 10, sender=consumer)
    assert (ok, received) == (False, 0)


# ---- lineage.vy -----------------------------------------------------------------------------


def _reference_pack(parents):
    """lineage's words of three (RoyaltyRouter's cache, CapsuleRegistry's tail words): 80-bit entries."""
    words = [0, 0, 0]
    for i, (cid, share) in enumerate(parents):
        words[i // 3] |= (cid | (share << 64)) << (80 * (i % 3))
    return words


parents_st = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=2**16 - 1)),
    max_size=8,
)


@given(parents=parents_st)
def test_lineage__pack__matches_the_registry_layout_and_round_trips(mods, parents):
    words, fits = mods.pack(parents)
    assert fits is True
    assert list(words) == _reference_pack(parents)
    assert [(p.capsule_id, p.share_bps) for p in mods.unpack(words, len(parents))] == parents
    for i, (cid, share) in enumerate(parents):
        assert tuple(mods.at(words, i)) == (cid, share)
        assert mods.entry(cid, share, i) == (cid | (share << 64)) << (80 * (i % 3))


def test_lineage__pack__id_above_64_bits__does_not_fit(mods):
    _, fits = mods.pack([(2**64, 1)])
    assert fits is False


def test_lineage__eight_parents__leave_bits_240_and_up_free(mods):
    parents = [(2**64 - 1, 2**16 - 1)] * 8
    words, _ = mods.pack(parents)
    assert all(w >> 240 == 0 for w in words)


# ---- masks.vy -------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 16, 32, 40, 48, 52, 55, 56, 64, 72, 80, 96, 127, 128, 160, 216])
def test_masks__mask_k__is_the_low_k_bits(mods, bits):
    assert mods.mask(bits) == 2**bits - 1
