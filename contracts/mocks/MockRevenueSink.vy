# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockRevenueSink: stands in for the RoyaltyRouter's `credit` in LicenseManager tests
@custom:contract-name MockRevenueSink
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Records the revenue credited per (capsule, token) and checks, like a real router
        would, that the tokens were received before `credit` was called. Test only.
"""

from ethereum.ercs import IERC20


# @dev Revenue credited per capsule and token.
credited: public(HashMap[uint256, HashMap[address, uint256]])


# @dev Revenue credited per token, over all capsules.
total: public(HashMap[address, uint256])


# @dev Emitted on every credit.
event Credited:
    capsule_id: indexed(uint256)
    token: indexed(address)
    amount: uint256
    payer: indexed(address)


@external
def credit(capsule_id: uint256, token: address, amount: uint256):
    """
    @dev Records `amount` of `token` as revenue of `capsule_id` (tokens already sent here).
    @param capsule_id The capsule.
    @param token The token.
    @param amount The amount.
    """
    new_total: uint256 = self.total[token] + amount
    assert staticcall IERC20(token).balanceOf(self) >= new_total, "sink: tokens not received"
    self.total[token] = new_total
    self.credited[capsule_id][token] += amount
    log Credited(capsule_id=capsule_id, token=token, amount=amount, payer=msg.sender)


# @dev Tokens this sink refuses (everything else is allowed).
refused: public(HashMap[address, bool])


@external
@view
def token_allowed(token: address) -> bool:
    """
    @dev Whether the sink accepts `token` (as RoyaltyRouter.token_allowed).
    @param token The token.
    @return bool True unless refused.
    """
    return not self.refused[token]


@external
def set_refused(token: address, refused: bool):
    """
    @dev Refuses (or accepts again) `token` (anyone; test only).
    @param token The token.
    @param refused Whether to refuse it.
    """
    self.refused[token] = refused
