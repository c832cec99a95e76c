# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title EvilERC1271Wallet: a malicious contract wallet (tests)
@custom:contract-name EvilERC1271Wallet
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice A credential holder whose ERC-1271 `isValidSignature` misbehaves on purpose, by `mode`:
        0 APPROVE_ALL (the magic value for any digest and any bytes, plus 32 trailing bytes), 1 REVERT,
        2 BURN_GAS (loops until the forwarded gas is gone), 3 GARBAGE (a wrong magic value followed
        by the right one in the trailing word).
        Accepts ERC-721 tokens. Test-only: anyone may set the mode.
"""

# @dev Misbehaviour: 0 approve all, 1 revert, 2 burn gas, 3 garbage return data.
mode: public(uint256)


# @dev The ERC-1271 magic value.
MAGIC: constant(bytes4) = 0x1626BA7E


# @dev The magic value as a full word, returned as the trailing garbage of mode 3.
MAGIC_WORD: constant(bytes32) = 0x1626BA7E00000000000000000000000000000000000000000000000000000000


# @dev Scratch the gas burner hashes (a view cannot write storage, so it only computes).
SALT: constant(bytes32) = keccak256("evil")


@deploy
def __init__(mode_: uint256):
    """
    @dev Sets the mode.
    @param mode_ The misbehaviour.
    """
    self.mode = mode_


@external
def set_mode(mode_: uint256):
    """
    @dev Switches the misbehaviour.
    @param mode_ The new mode.
    """
    self.mode = mode_


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[65]) -> (bytes4, bytes32):
    """
    @dev ERC-1271, maliciously.
    @param hash The digest.
    @param signature Ignored.
    @return bytes4 The magic value (mode 0) or a wrong one (mode 3), followed by
    @return bytes32 32 extra bytes of return data (callers must tolerate or refuse them).
    """
    m: uint256 = self.mode
    if m == 1:
        raise "evil: no"
    if m == 2:
        h: bytes32 = hash
        for i: uint256 in range(10_000_000):
            h = keccak256(concat(h, SALT))
        assert h == empty(bytes32)  # never true: all the gas was spent above
    if m == 3:
        return 0xDEADBEEF, MAGIC_WORD
    return MAGIC, keccak256(hash)


@external
def onERC721Received(operator: address, sender: address, token_id: uint256, data: Bytes[1024]) -> bytes4:
    """
    @dev Accepts ERC-721 tokens.
    @param operator The operator.
    @param sender The previous owner.
    @param token_id The token.
    @param data Extra data.
    @return bytes4 The ERC-721 receiver magic value.
    """
    return 0x150B7A02
