# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Proof of Access token transfers
@custom:contract-name poa_tokens
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice The two ERC-20 moves of AccessStaking (stake in and out, rewards in and out), with
        the contract's one reason string "poa: transfer failed". Stateless: import it, no
        `initializes:` needed. AccessStaking takes standard ERC-20 tokens only (its stake
        accounting trusts `amount`, so it does not run the `erc20_exact` balance check: a
        fee-on-transfer stake token is outside its trust model, see its @custom:security).

        Example:
            poa_tokens._pull(stake_token, amount)          # from msg.sender, allowance needed
            poa_tokens._push(reward_token, node, amount)
@custom:security Each function makes one external call to the token; the callers (the
        AccessStaking modules, `# pragma nonreentrancy on`) call them after their state writes.
"""

from ethereum.ercs import IERC20


@internal
def _pull(token: address, amount: uint256):
    """
    @dev Pulls `amount` of `token` from the caller (allowance needed).
    @param token The token.
    @param amount The amount.
    """
    assert extcall IERC20(token).transferFrom(
        msg.sender, self, amount, default_return_value=True
    ), "poa: transfer failed"


@internal
def _push(token: address, to: address, amount: uint256):
    """
    @dev Sends `amount` of `token` to `to`.
    @param token The token.
    @param to The receiver.
    @param amount The amount.
    """
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "poa: transfer failed"
