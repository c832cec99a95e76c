# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title UsageMeter payout: a batch's license revenue, paid to the RoyaltyRouter at the end
@custom:contract-name meter_payout
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice The license part of a batch's charges is gathered per (capsule, token) in a few
        entries (`Caps`, at most MAX_CAPS; when they are full and a new key comes, they are
        paid out first) and paid out after the effects of the vouchers it covers: one token
        transfer per token to the router, then one `credit` per (capsule, token).
        Internal functions only (no state, no externals); the deployable owns `router`.

        Example (the UsageMeter's settlement pass):
            caps = meter_payout.join(caps, capsule_id, token, amount, router)
            meter_payout.pay(caps, router)       # or pay_one(capsule_id, token, amount, router)
@custom:security `pay` makes the external calls (token transfer, router credit); the
        deployable calls it after its effects, under its nonreentrancy lock. Tokens returning
        nothing from `transfer` count as success (`default_return_value=True`).
"""

from ethereum.ercs import IERC20

from interfaces import IRoyaltyRouter


# @dev Distinct (capsule, token) entries a batch gathers before paying them out.
MAX_CAPS: constant(uint256) = 8


# @dev A batch's license revenue for one (capsule, token).
struct CapsuleAgg:
    capsule_id: uint256
    token: address
    amount: uint256


@internal
def join(
    caps_: DynArray[CapsuleAgg, MAX_CAPS], capsule_id: uint256, token: address, amount: uint256, router: address
) -> DynArray[CapsuleAgg, MAX_CAPS]:
    """
    @dev Adds a run of license revenue to the batch's (capsule, token) entries; when they are
         full and the key is new, pays them out first (`pay`).
    @param caps_ The entries so far.
    @param capsule_id The capsule.
    @param token The token.
    @param amount The run's license revenue.
    @param router The RoyaltyRouter.
    @return DynArray The entries with the run added.
    """
    caps: DynArray[CapsuleAgg, MAX_CAPS] = caps_
    for j: uint256 in range(len(caps), bound=MAX_CAPS):
        if caps[j].capsule_id == capsule_id and caps[j].token == token:
            caps[j].amount += amount
            return caps
    if len(caps) == MAX_CAPS:
        self.pay(caps, router)
        caps = []
    caps.append(CapsuleAgg(capsule_id=capsule_id, token=token, amount=amount))
    return caps


@internal
def pay(caps: DynArray[CapsuleAgg, MAX_CAPS], router: address):
    """
    @dev Moves gathered license revenue to the router: one transfer per token, then one
         `credit` per (capsule, token). Called after the effects of every voucher it covers
         (mid-batch only when the entries are full; the meter is nonreentrant).
    @param caps The gathered (capsule, token) entries.
    @param router The RoyaltyRouter.
    """
    for k: uint256 in range(len(caps), bound=MAX_CAPS):
        token: address = caps[k].token
        first: bool = True
        total: uint256 = 0
        for m: uint256 in range(len(caps), bound=MAX_CAPS):
            if caps[m].token == token:
                if m < k:
                    first = False
                    break
                total += caps[m].amount
        if first and total != 0:
            assert extcall IERC20(token).transfer(router, total, default_return_value=True), "meter: transfer failed"
    for k: uint256 in range(len(caps), bound=MAX_CAPS):
        if caps[k].amount != 0:
            extcall IRoyaltyRouter(router).credit(caps[k].capsule_id, caps[k].token, caps[k].amount)


@internal
def pay_one(capsule_id: uint256, token: address, amount: uint256, router: address):
    """
    @dev `pay` of a single (capsule, token) entry (no entry when `amount` is zero): the token
         transfer, then the `credit`.
    @param capsule_id The capsule.
    @param token The token.
    @param amount The license revenue.
    @param router The RoyaltyRouter.
    """
    if amount == 0:
        return
    assert extcall IERC20(token).transfer(router, amount, default_return_value=True), "meter: transfer failed"
    extcall IRoyaltyRouter(router).credit(capsule_id, token, amount)
