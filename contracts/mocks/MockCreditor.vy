# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockCreditor: credits many capsules in one transaction
@custom:contract-name MockCreditor
@license GNU Affero General Public License v3.0 only
@notice Test stand-in for the UsageMeter's `ingest`: one transaction that credits a batch of
        capsules (tokens already held by the router), so gas tests can measure the marginal
        cost of one `credit` on the hot path.
"""

from interfaces import IRoyaltyRouter


@external
def credit_batch(router: address, token: address, capsule_ids: DynArray[uint256, 64], amount: uint256):
    """
    @dev Calls `router.credit(id, token, amount)` for each id.
    @param router The RoyaltyRouter (this contract must be one of its two wired creditors).
    @param token The token.
    @param capsule_ids The capsules to credit.
    @param amount The amount per capsule.
    """
    for c: uint256 in capsule_ids:
        extcall IRoyaltyRouter(router).credit(c, token, amount)
