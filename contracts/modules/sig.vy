# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title secp256k1 signature checks for CodexField
@custom:contract-name sig
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice The one place where CodexField decides that an ECDSA signature is well formed:
        v in {27, 28}, r != 0, 0 < s <= n/2 (the low-s rule: no malleable twin is accepted)
        and a signature that recovers no key is refused. r >= n needs no check of its own: the
        ecrecover precompile recovers nothing for it, which the zero check refuses.
        Stateless (constants and pure functions only): import it, no `initializes:` needed.
        Both routines return the zero address instead of reverting, so the caller picks its
        own stable reason string (IdentityRegistry reverts "identity: bad signature"; the
        UsageMeter rejects a voucher with reason code 1).

        Example:
            from .modules import sig
            signer: address = sig.recover(digest, convert(v, uint256), convert(r, uint256), convert(s, uint256))
            assert signer != empty(address), "identity: bad signature"

            signer = sig.recover_packed(digest, signature)    # 65-byte r ‖ s ‖ v
@custom:security Pure: reads and writes nothing. EIP-2098 compact (64-byte) signatures are
        refused by `recover_packed`.
"""


# @dev Order n of the secp256k1 group.
SECP256K1_N: constant(uint256) = (
    115_792_089_237_316_195_423_570_985_008_687_907_852_837_564_279_074_904_382_605_163_141_518_161_494_337
)


# @dev Largest accepted `s` (n // 2): the low half of the curve order only (no malleable twins).
HALF_N: constant(uint256) = SECP256K1_N // 2


@internal
@pure
def recover(digest: bytes32, v: uint256, r: uint256, s: uint256) -> address:
    """
    @dev Non-reverting ECDSA recovery of (v, r, s) over `digest` (a raw digest: no prefix is
         added here).
    @param digest The signed 32-byte digest.
    @param v The recovery id (27 or 28).
    @param r The signature's r (non-zero).
    @param s The signature's s (in [1, n/2]).
    @return address The signer, or zero when the signature is malformed or recovers no key.
    """
    if v != 27 and v != 28:
        return empty(address)
    if s > HALF_N or s == 0 or r == 0:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@pure
def recover_packed(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @dev `recover` of a 65-byte r ‖ s ‖ v signature (any other length recovers nothing).
    @param digest The signed 32-byte digest.
    @param signature The signature: r (32 bytes) ‖ s (32 bytes) ‖ v (1 byte).
    @return address The signer, or zero.
    """
    if len(signature) != 65:
        return empty(address)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    # The checks of `recover`, written out: this is the meter's per-voucher path and one internal
    # call less keeps its gas rows where they are.
    if v != 27 and v != 28:
        return empty(address)
    if s > HALF_N or s == 0 or r == 0:
        return empty(address)
    return ecrecover(digest, v, r, s)
