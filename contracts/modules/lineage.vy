# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title The packed lineage (parents) codec of CodexField capsules
@custom:contract-name lineage
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice A capsule has at most MAX_PARENTS (8) parents, each a (capsule id < 2**64,
        share_bps < 2**16) edge. They pack three per 256-bit word, as the 80-bit entry
        `capsule_id | share_bps << 64` at bit offsets 0, 80 and 160 of word i // 3, so eight
        parents take three words and bits 240..255 of every word stay free (RoyaltyRouter
        keeps its cache flag and parent count there; CapsuleRegistry leaves them zero).
        The CapsuleRegistry writes this layout at mint and the RoyaltyRouter caches it; both
        read it back with `at` / `unpack`. Stateless: import it, no `initializes:` needed.
        Hot loops that cannot afford an internal call per parent use the constants
        (ENTRY_BITS, PER_WORD) in their own shift expressions: the layout still has one home.

        Example:
            from .modules import lineage
            words: uint256[3] = empty(uint256[3])
            fits: bool = False
            words, fits = lineage.pack(parents)
            assert fits, "royalty: capsule id too large"
            parent_id: uint256 = 0
            share: uint256 = 0
            parent_id, share = lineage.at(words, 4)      # the fifth parent
"""

from interfaces import ICapsuleRegistry


# @dev Most parents per capsule.
MAX_PARENTS: constant(uint256) = 8


# @dev Bits of one entry (capsule id 64 | share 16).
ENTRY_BITS: constant(uint256) = 80


# @dev Entries per word.
PER_WORD: constant(uint256) = 3


# @dev Mask of an entry's capsule id.
_ID_MASK: constant(uint256) = 2**64 - 1


# @dev Mask of an entry's share (after the shift by 64).
_SHARE_MASK: constant(uint256) = 2**16 - 1


@internal
@pure
def entry(capsule_id: uint256, share_bps: uint16, i: uint256) -> uint256:
    """
    @dev The entry of parent `i`, already shifted to its offset in word `i // PER_WORD`; OR it
         into that word (the CapsuleRegistry builds each word while it checks the parents).
    @param capsule_id The parent (< 2**64; larger ids would spill into the share bits).
    @param share_bps The parent's share in basis points.
    @param i The parent's index (< MAX_PARENTS).
    @return uint256 The shifted entry.
    """
    return (capsule_id | (convert(share_bps, uint256) << 64)) << (ENTRY_BITS * (i % PER_WORD))


@internal
@pure
def pack(parents: DynArray[ICapsuleRegistry.Parent, MAX_PARENTS]) -> (uint256[3], bool):
    """
    @dev Packs up to eight parents into three words (unused entries stay zero).
    @param parents The parents, in order.
    @return uint256[3] The packed words.
    @return bool True when every capsule id is below 2**64 (otherwise the words are garbage).
    """
    words: uint256[3] = empty(uint256[3])
    fits: bool = True
    for i: uint256 in range(len(parents), bound=MAX_PARENTS):
        p: ICapsuleRegistry.Parent = parents[i]
        if p.capsule_id > _ID_MASK:
            fits = False
        # `entry` written out (no internal call per parent).
        words[i // PER_WORD] |= (p.capsule_id | (convert(p.share_bps, uint256) << 64)) << (ENTRY_BITS * (i % PER_WORD))
    return words, fits


@internal
@pure
def at(words: uint256[3], i: uint256) -> (uint256, uint256):
    """
    @dev Parent `i` of the packed words (unchecked arithmetic: i < MAX_PARENTS).
    @param words The packed words.
    @param i The parent's index (< MAX_PARENTS).
    @return uint256 The parent's capsule id.
    @return uint256 The parent's share in basis points.
    """
    e: uint256 = words[unsafe_div(i, PER_WORD)] >> unsafe_mul(
        ENTRY_BITS, unsafe_sub(i, unsafe_mul(unsafe_div(i, PER_WORD), PER_WORD))
    )
    return e & _ID_MASK, (e >> 64) & _SHARE_MASK


@internal
@pure
def unpack(words: uint256[3], n: uint256) -> DynArray[ICapsuleRegistry.Parent, MAX_PARENTS]:
    """
    @dev The first `n` parents of the packed words.
    @param words The packed words.
    @param n The parent count (<= MAX_PARENTS).
    @return DynArray The parents, in order.
    """
    out: DynArray[ICapsuleRegistry.Parent, MAX_PARENTS] = []
    for i: uint256 in range(n, bound=MAX_PARENTS):
        e: uint256 = words[i // PER_WORD] >> (ENTRY_BITS * (i % PER_WORD))
        out.append(ICapsuleRegistry.Parent(capsule_id=e & _ID_MASK, share_bps=convert((e >> 64) & _SHARE_MASK, uint16)))
    return out
