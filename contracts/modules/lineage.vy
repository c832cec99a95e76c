# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title The packed lineage (parents) codec of CodexField capsules
@custom:contract-name lineage
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice A capsule has at most MAX_PARENTS (8) parents, each a (capsule id < 2**64,
        share_bps < 2**16) edge, stored as the 80-bit entry `capsule_id | share_bps << 64`
        (ENTRY_BITS), three entries per 256-bit word at bit offsets 0, 80 and 160 (PER_WORD),
        so bits 240..255 of every word stay free. Two layouts place the entries in words:

          words of three  parent i at entry i % 3 of word i // 3: eight parents take three
                          words. The RoyaltyRouter's lineage cache (`pack`, `at`, `unpack`;
                          it keeps its cache flag and parent count in bits 240..255 of word 0).
          head and tail   parents 0 and 1 (HEAD_PARENTS) at entries 0 and 1 of a head word
                          whose bits 160..255 belong to its owner, parents 2.. in words of
                          three after it (parent i at entry (i - 2) % 3 of tail word
                          (i - 2) // 3). The CapsuleRegistry's: the head word is its
                          content-hash index entry (capsule id at bit 192), so a mint with up
                          to two parents writes no parent slot; a version that re-uses its
                          chain's hash has no head word and keeps its parents in words of three.

        Why two layouts, not one: the registry's head word holds the capsule id in bits
        192..255, so it has room for two entries, not three; words of three there would move
        parents 0 and 1 out of the index entry into a fresh slot (~22k gas more for a mint with
        one or two parents). Head and tail in the RoyaltyRouter's cache would take one word more
        for three to five parents (one fresh slot more on a capsule's first propagation).

        Stateless: import it, no `initializes:` needed. Hot loops that cannot afford an internal
        call per parent (CapsuleRegistry `mint`, RoyaltyRouter's cache) use the constants in
        their own shift expressions: the layout still has one home.

        Example:
            from .modules import lineage
            words: uint256[3] = empty(uint256[3])
            fits: bool = False
            words, fits = lineage.pack(parents)
            assert fits, "royalty: capsule id too large"
            parent_id: uint256 = 0
            share: uint256 = 0
            parent_id, share = lineage.at(words, 4)      # the fifth parent
            p: ICapsuleRegistry.Parent = lineage.parent(head >> lineage.ENTRY_BITS)  # parent 1 of a head word
"""

from interfaces import ICapsuleRegistry


# @dev Most parents per capsule.
MAX_PARENTS: constant(uint256) = 8


# @dev Bits of one entry (capsule id 64 | share 16).
ENTRY_BITS: constant(uint256) = 80


# @dev Entries per word.
PER_WORD: constant(uint256) = 3


# @dev Parents in a head word (the rest of the head word, bits 160..255, is its owner's).
HEAD_PARENTS: constant(uint256) = 2


# @dev Bits of an entry's capsule id (its share sits above them).
ID_BITS: constant(uint256) = 64


# @dev Mask of an entry's capsule id.
ID_MASK: constant(uint256) = 2**64 - 1


# @dev Mask of an entry's share (after the shift by 64).
SHARE_MASK: constant(uint256) = 2**16 - 1


@internal
@pure
def entry(capsule_id: uint256, share_bps: uint16, i: uint256) -> uint256:
    """
    @dev The entry of parent `i`, already shifted to its offset in word `i // PER_WORD` of the
         words-of-three layout; OR it into that word.
    @param capsule_id The parent (< 2**64; larger ids would spill into the share bits).
    @param share_bps The parent's share in basis points.
    @param i The parent's index (< MAX_PARENTS).
    @return uint256 The shifted entry.
    """
    return (capsule_id | (convert(share_bps, uint256) << ID_BITS)) << (ENTRY_BITS * (i % PER_WORD))


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
        if p.capsule_id > ID_MASK:
            fits = False
        # `entry` written out (no internal call per parent).
        words[i // PER_WORD] |= (p.capsule_id | (convert(p.share_bps, uint256) << ID_BITS)) << (
            ENTRY_BITS * (i % PER_WORD)
        )
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
    return e & ID_MASK, (e >> ID_BITS) & SHARE_MASK


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
        out.append(
            ICapsuleRegistry.Parent(capsule_id=e & ID_MASK, share_bps=convert((e >> ID_BITS) & SHARE_MASK, uint16))
        )
    return out


@internal
@pure
def parent(entry: uint256) -> ICapsuleRegistry.Parent:
    """
    @dev The parent whose entry is in the low ENTRY_BITS of `entry` (higher bits are ignored):
         shift a word right by `ENTRY_BITS * k` to read its entry k.
    @param entry A packed word, shifted so that the entry is in its low bits.
    @return Parent The parent.
    """
    return ICapsuleRegistry.Parent(
        capsule_id=entry & ID_MASK, share_bps=convert((entry >> ID_BITS) & SHARE_MASK, uint16)
    )
