# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title MockModules: test harness of the stateless shared modules
@custom:contract-name MockModules
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Exposes `modules/sig.vy`, `modules/erc20_exact.vy`, `modules/lineage.vy` and
        `modules/masks.vy` as external functions so tests pin their behaviour. Tests only;
        never deployed.
"""

from interfaces import ICapsuleRegistry

from ..modules import sig
from ..modules import erc20_exact
from ..modules import lineage
from ..modules import masks


@external
@pure
def half_n() -> uint256:
    """
    @dev `sig.HALF_N`.
    @return uint256 n // 2 of secp256k1.
    """
    return sig.HALF_N


@external
@pure
def recover(digest: bytes32, v: uint256, r: uint256, s: uint256) -> address:
    """
    @dev `sig.recover`.
    @param digest The digest.
    @param v The v.
    @param r The r.
    @param s The s.
    @return address The signer or zero.
    """
    return sig.recover(digest, v, r, s)


@external
@pure
def recover_packed(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @dev `sig.recover_packed`.
    @param digest The digest.
    @param signature r ‖ s ‖ v.
    @return address The signer or zero.
    """
    return sig.recover_packed(digest, signature)


@external
def transfer_from(token: address, receiver: address, amount: uint256) -> (bool, uint256, uint256):
    """
    @dev `erc20_exact.transfer_from` from the caller.
    @param token The token.
    @param receiver The receiver.
    @param amount The amount.
    @return bool Success.
    @return uint256 Received.
    @return uint256 Balance after.
    """
    return erc20_exact.transfer_from(token, msg.sender, receiver, amount)


@external
@pure
def pack(parents: DynArray[ICapsuleRegistry.Parent, 8]) -> (uint256[3], bool):
    """
    @dev `lineage.pack`.
    @param parents The parents.
    @return uint256[3] The words.
    @return bool Whether the ids fit.
    """
    return lineage.pack(parents)


@external
@pure
def entry(capsule_id: uint256, share_bps: uint16, i: uint256) -> uint256:
    """
    @dev `lineage.entry`.
    @param capsule_id The parent.
    @param share_bps The share.
    @param i The index.
    @return uint256 The shifted entry.
    """
    return lineage.entry(capsule_id, share_bps, i)


@external
@pure
def at(words: uint256[3], i: uint256) -> (uint256, uint256):
    """
    @dev `lineage.at`.
    @param words The words.
    @param i The index.
    @return uint256 The id.
    @return uint256 The share.
    """
    return lineage.at(words, i)


@external
@pure
def unpack(words: uint256[3], n: uint256) -> DynArray[ICapsuleRegistry.Parent, 8]:
    """
    @dev `lineage.unpack`.
    @param words The words.
    @param n The count.
    @return DynArray The parents.
    """
    return lineage.unpack(words, n)


@external
@pure
def mask(bits: uint256) -> uint256:
    """
    @dev The mask constant of `bits` bits (0 for a width masks.vy does not define).
    @param bits The width.
    @return uint256 The mask.
    """
    if bits == 8:
        return masks.MASK8
    if bits == 16:
        return masks.MASK16
    if bits == 32:
        return masks.MASK32
    if bits == 40:
        return masks.MASK40
    if bits == 48:
        return masks.MASK48
    if bits == 52:
        return masks.MASK52
    if bits == 55:
        return masks.MASK55
    if bits == 56:
        return masks.MASK56
    if bits == 64:
        return masks.MASK64
    if bits == 72:
        return masks.MASK72
    if bits == 80:
        return masks.MASK80
    if bits == 96:
        return masks.MASK96
    if bits == 127:
        return masks.MASK127
    if bits == 128:
        return masks.MASK128
    if bits == 160:
        return masks.MASK160
    if bits == 216:
        return masks.MASK216
    return 0
