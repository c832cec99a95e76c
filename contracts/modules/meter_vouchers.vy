# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title UsageMeter vouchers: reading them in place, their EIP-712 digest, who signed them
@custom:contract-name meter_vouchers
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice A batch's vouchers and signatures are read where they are, in calldata: Vyper has
        decoded and validated every argument of `ingest` / `ingest_attested` before the body
        runs (each array's length within its bound, each field within its type, each signature
        at most 65 bytes), so the same bytes read again are valid, and reading them costs a
        calldata copy where handing the arrays to an internal function would copy the
        64-voucher arrays and expand memory. The offsets follow the ABI: an argument's head
        word holds the offset (from byte 4) of its array, whose elements start one word (the
        length) later; a `Bytes` element is an offset (from the first element) to its length
        word and bytes.

        A `Voucher` (11 fields) encodes in EIP-712 exactly as its 11 ABI words, so its struct
        hash is keccak256(VOUCHER_TYPEHASH ‖ those 352 bytes): `digest_of` hashes the calldata
        words of a batch's voucher or `abi_encode(v)` alike.

        The signer of a voucher is the payer's own key (`sig.recover`: v in {27, 28}, 0 < s <=
        n/2, r != 0) or an ERC-1056 `sigAuth` delegate of the payer whose validity ends after
        the voucher's `issued_at` (`delegate_at`). No ERC-1271.

        Example (the UsageMeter's settlement pass):
            vs_at: uint256 = meter_vouchers.array_at(4)          # ingest's first argument
            v: IUsageMeter.Voucher = abi_decode(slice(msg.data, vs_at + i * 352, 352), IUsageMeter.Voucher)
            signer: address = meter_vouchers.recover_at(digest, meter_vouchers.array_at(36), i)
@custom:security Reads only what Vyper validated (the arithmetic of the offsets is Vyper's own
        decoding, unchecked alike, so the bytes read are the ones it checked). A signature of
        any length but 65 recovers nothing. Revoking a `sigAuth` delegate later does not void a
        voucher it signed while valid.
"""

from interfaces import IAccessStaking

from . import sig


# @dev The ERC-1056 registry, as far as the meter reads it (validity end of a delegate, keyed
#      by keccak256 of the delegate type).
interface IDIDRegistry:
    def delegates(identity: address, delegate_type_hash: bytes32, delegate: address) -> uint256: view


# @dev EIP-712 type hash of `Voucher`.
VOUCHER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Voucher(uint256 credential_id,address node,address payer,uint256 purpose,uint256 cumulative_mu,uint64 cumulative_calls,uint64 cumulative_failures,uint64 cumulative_latency_ms,uint256 node_price_per_mu,uint64 issued_at,uint64 deadline)"
)


# @dev ERC-1056 delegate type allowed to sign vouchers for a holder ("sigAuth", right-padded).
SIG_AUTH: public(constant(bytes32)) = 0x7369674175746800000000000000000000000000000000000000000000000000


# @dev keccak256(SIG_AUTH): the key of ERC-1056 `delegates`.
_SIG_AUTH_HASH: constant(bytes32) = keccak256(SIG_AUTH)


# @dev Bytes of one ABI-encoded `Voucher` (11 words).
VOUCHER_SIZE: constant(uint256) = 352


# @dev The ERC-1056 IdentityRegistry consulted for `sigAuth` delegates (zero: none).
identity: public(immutable(address))


@deploy
def __init__(identity_: address):
    """
    @dev Sets the IdentityRegistry.
    @param identity_ The ERC-1056 IdentityRegistry (zero: no delegate signing).
    """
    identity = identity_


@internal
@view
def word(at: uint256) -> uint256:
    """
    @dev The calldata word at byte `at`.
    @param at A calldata offset.
    @return uint256 The word.
    """
    return convert(slice(msg.data, at, 32), uint256)


@internal
@view
def array_at(head: uint256) -> uint256:
    """
    @dev Calldata offset of the first element of the array argument whose head word is at `head`.
    @param head The argument's head (4 + 32 * its position).
    @return uint256 The offset.
    """
    return unsafe_add(convert(slice(msg.data, head, 32), uint256), 36)


@internal
@pure
def digest_of(domain: bytes32, encoded: Bytes[352]) -> bytes32:
    """
    @dev EIP-712 digest of a voucher from its ABI encoding under the domain separator `domain`.
    @param domain This contract's EIP-712 domain separator.
    @param encoded `abi_encode(voucher)`, or the voucher's validated calldata.
    @return bytes32 The digest.
    """
    return keccak256(concat(x"1901", domain, keccak256(concat(VOUCHER_TYPEHASH, encoded))))


@internal
@view
def recover_at(digest: bytes32, sigs_at: uint256, i: uint256) -> address:
    """
    @dev `sig.recover` of the i-th signature of a calldata `Bytes[65]` array whose elements
         start at `sigs_at` (any length but 65 recovers nothing).
    @param digest The signed digest.
    @param sigs_at Calldata offset of the array's first element (`array_at`).
    @param i The index.
    @return address The signer, or zero.
    """
    at: uint256 = unsafe_add(sigs_at, self.word(unsafe_add(sigs_at, unsafe_mul(i, 32))))
    # A 65-byte signature is padded to 96 bytes after its length word: all of it is calldata.
    if unsafe_add(at, 128) > len(msg.data):
        return empty(address)
    raw: Bytes[97] = slice(msg.data, at, 97)
    if extract32(raw, 0, output_type=uint256) != 65:
        return empty(address)
    return sig.recover(
        digest,
        convert(slice(raw, 96, 1), uint256),
        extract32(raw, 32, output_type=uint256),
        extract32(raw, 64, output_type=uint256),
    )


@internal
@view
def delegate_at(payer: address, signer: address, at: uint256) -> bool:
    """
    @dev Slow path when the recovered signer is not the payer: a `sigAuth` delegate of the payer
         (ERC-1056) whose validity ends after `at`. Revoking it later does not void the voucher.
    @param payer The voucher's payer.
    @param signer The address recovered from the signature (zero if malformed).
    @param at The voucher's `issued_at`.
    @return bool True if `signer` could sign for `payer` at `at`.
    """
    if signer == empty(address) or identity == empty(address):
        return False
    return staticcall IDIDRegistry(identity).delegates(payer, _SIG_AUTH_HASH, signer) > at


@internal
@view
def tee_signed(pool: address, node: address, tee: address) -> bool:
    """
    @dev Whether `tee`, the address a voucher's TEE co-signature recovers, is the node's
         registered TEE signer.
    @param pool AccessStaking (zero: not wired).
    @param node The node.
    @param tee The recovered co-signer (zero: none).
    @return bool True if co-signed by the registered TEE signer.
    """
    if pool == empty(address) or tee == empty(address):
        return False
    return staticcall IAccessStaking(pool).tee_signer(node) == tee
