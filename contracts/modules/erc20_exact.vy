# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Exact ERC-20 transfers in (the fee-on-transfer balance check)
@custom:contract-name erc20_exact
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice The one balance-delta check of CodexField: `transfer_from` moves `amount` of a token
        with `transferFrom` and measures what the receiver really got (receiver's `balanceOf`
        before and after), so a fee-on-transfer or otherwise short-delivering token is seen.
        It never reverts on its own: the caller asserts with its own stable reason strings.
        Stateless: import it, no `initializes:` needed.

        Example (UsageMeter.deposit):
            from .modules import erc20_exact
            ok: bool = False
            received: uint256 = 0
            balance: uint256 = 0
            ok, received, balance = erc20_exact.transfer_from(token, msg.sender, self, amount)
            assert ok, "meter: transfer failed"
            assert received == amount, "meter: fee-on-transfer token"
@custom:security Makes three external calls to `token` (balanceOf, transferFrom, balanceOf);
        the importing contract keeps its nonreentrancy lock on and calls this after its state
        writes or before reading the result only (checks-effects-interactions). Tokens that
        return nothing from `transferFrom` count as success (`default_return_value=True`), as
        snekmate and OpenZeppelin's SafeERC20 do.
"""

from ethereum.ercs import IERC20


@internal
def transfer_from(token: address, sender: address, receiver: address, amount: uint256) -> (bool, uint256, uint256):
    """
    @dev `IERC20(token).transferFrom(sender, receiver, amount)` with the receiver's balance
         measured around it.
    @param token The ERC-20 token.
    @param sender The 20-byte holder the tokens come from (allowance given to this contract).
    @param receiver The 20-byte receiver (this contract, or a sink it pays).
    @param amount The amount asked for.
    @return bool Whether `transferFrom` reported success (nothing moved when False).
    @return uint256 The amount the receiver gained (0 when its balance did not grow).
    @return uint256 The receiver's balance after the transfer.
    """
    before: uint256 = staticcall IERC20(token).balanceOf(receiver)
    if not extcall IERC20(token).transferFrom(sender, receiver, amount, default_return_value=True):
        return False, 0, before
    after: uint256 = staticcall IERC20(token).balanceOf(receiver)
    if after < before:
        return True, 0, after
    return True, unsafe_sub(after, before), after
