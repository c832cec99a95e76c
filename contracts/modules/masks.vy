# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Bit masks of CodexField's packed storage words
@custom:contract-name masks
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice `MASKk = 2**k - 1`: the low k bits. Every packed word in the CodexField contracts
        (node words, stake words, terms, parents, counters) reads its fields as
        `(word >> offset) & masks.MASKk`. Constants only: import it, no `initializes:` needed;
        the compiler folds them, so using them costs nothing.

        Example:
            from .modules import masks
            reliability: uint256 = meta & masks.MASK64
            jailed_until: uint256 = (meta >> 88) & masks.MASK32
"""


# @dev The low 8 bits.
MASK8: constant(uint256) = 2**8 - 1


# @dev The low 16 bits.
MASK16: constant(uint256) = 2**16 - 1


# @dev The low 32 bits.
MASK32: constant(uint256) = 2**32 - 1


# @dev The low 40 bits (a timestamp field).
MASK40: constant(uint256) = 2**40 - 1


# @dev The low 48 bits.
MASK48: constant(uint256) = 2**48 - 1


# @dev The low 52 bits.
MASK52: constant(uint256) = 2**52 - 1


# @dev The low 55 bits.
MASK55: constant(uint256) = 2**55 - 1


# @dev The low 56 bits.
MASK56: constant(uint256) = 2**56 - 1


# @dev The low 64 bits.
MASK64: constant(uint256) = 2**64 - 1


# @dev The low 72 bits.
MASK72: constant(uint256) = 2**72 - 1


# @dev The low 80 bits.
MASK80: constant(uint256) = 2**80 - 1


# @dev The low 96 bits.
MASK96: constant(uint256) = 2**96 - 1


# @dev The low 127 bits (an amount field beside a flag bit).
MASK127: constant(uint256) = 2**127 - 1


# @dev The low 128 bits (one half of a word).
MASK128: constant(uint256) = 2**128 - 1


# @dev The low 160 bits (an address field).
MASK160: constant(uint256) = 2**160 - 1


# @dev The low 216 bits.
MASK216: constant(uint256) = 2**216 - 1
