# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title EvilReentrantReceiver: an ERC-721 receiver that re-enters (tests)
@custom:contract-name EvilReentrantReceiver
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice On `onERC721Received` it calls `target` with `payload` (e.g. the CapsuleRegistry's or
        the LicenseManager's `safeTransferFrom`, `mint`, `purchase`), records whether the
        re-entry succeeded, and then accepts the token; with `strict` it reverts when the
        re-entry failed, so the whole outer transfer must revert. Test-only.
"""

# @dev Contract to re-enter and the calldata to send it.
target: public(address)
payload: public(Bytes[2048])
# @dev Revert the outer transfer when the re-entry fails.
strict: public(bool)
# @dev Re-entries tried and re-entries that succeeded.
attempts: public(uint256)
successes: public(uint256)


@external
def set_attack(target_: address, payload_: Bytes[2048], strict_: bool):
    """
    @dev Arms the receiver.
    @param target_ The contract to re-enter.
    @param payload_ The calldata.
    @param strict_ Revert the outer call when the re-entry fails.
    """
    self.target = target_
    self.payload = payload_
    self.strict = strict_


@external
def onERC721Received(operator: address, sender: address, token_id: uint256, data: Bytes[1024]) -> bytes4:
    """
    @dev Re-enters `target`, then accepts the token.
    @param operator The operator.
    @param sender The previous owner.
    @param token_id The token.
    @param data Extra data.
    @return bytes4 The ERC-721 receiver magic value.
    """
    if self.target != empty(address):
        self.attempts += 1
        ok: bool = raw_call(self.target, self.payload, revert_on_failure=False)
        if ok:
            self.successes += 1
        assert ok or not self.strict, "evil: re-entry blocked"
    return 0x150B7A02


@external
def approve_token(token: address, spender: address, amount: uint256):
    """
    @dev Lets tests fund calls the receiver makes (ERC-20 approve).
    @param token The ERC-20.
    @param spender The spender.
    @param amount The allowance.
    """
    raw_call(token, abi_encode(spender, amount, method_id=method_id("approve(address,uint256)")))
