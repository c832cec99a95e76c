# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockERC1271Wallet: a minimal contract wallet (tests)
@custom:contract-name MockERC1271Wallet
@license GNU Affero General Public License v3.0 only
@notice Approves a digest when its owner's key signed it (ERC-1271). A malicious variant is
        `EvilERC1271Wallet`: it approves everything. The owner can make the wallet add an
        ERC-1056 delegate for itself (`add_delegate`): that is how a contract wallet signs
        usage vouchers, since the UsageMeter takes no ERC-1271 signature.
"""


# @dev The ERC-1056 registry as far as the wallet calls it.
interface IDIDRegistry:
    def addDelegate(identity: address, delegateType: bytes32, delegate: address, validity: uint256): nonpayable
    def revokeDelegate(identity: address, delegateType: bytes32, delegate: address): nonpayable


# @dev The key that speaks for the wallet.
owner: public(address)


@deploy
def __init__(owner_: address):
    """
    @dev Sets the owner.
    @param owner_ The owner key.
    """
    self.owner = owner_


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[65]) -> bytes4:
    """
    @dev ERC-1271: valid when the owner signed `hash`.
    @param hash The digest.
    @param signature The owner's (r, s, v) signature.
    @return bytes4 The magic value or 0xffffffff.
    """
    if len(signature) != 65:
        return 0xFFFFFFFF
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if ecrecover(hash, v, r, s) == self.owner:
        return 0x1626BA7E
    return 0xFFFFFFFF


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


@external
def add_delegate(registry: address, delegate_type: bytes32, delegate: address, validity: uint256):
    """
    @dev The wallet adds `delegate` for itself in the ERC-1056 `registry` (owner only).
    @param registry The IdentityRegistry.
    @param delegate_type The delegate type (e.g. "sigAuth", right-padded).
    @param delegate The delegate key.
    @param validity Seconds from now.
    """
    assert msg.sender == self.owner, "wallet: not owner"
    extcall IDIDRegistry(registry).addDelegate(self, delegate_type, delegate, validity)


@external
def revoke_delegate(registry: address, delegate_type: bytes32, delegate: address):
    """
    @dev The wallet revokes `delegate` in the ERC-1056 `registry` (owner only).
    @param registry The IdentityRegistry.
    @param delegate_type The delegate type.
    @param delegate The delegate key.
    """
    assert msg.sender == self.owner, "wallet: not owner"
    extcall IDIDRegistry(registry).revokeDelegate(self, delegate_type, delegate)
