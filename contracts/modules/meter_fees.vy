# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title UsageMeter settings and protocol fees: AccessStaking, the fee rate, the fee pool
@custom:contract-name meter_fees
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice The two settings every batch reads share one slot (`config`: the AccessStaking
        address, wired once, and the protocol fee in basis points above it). `protocol_fee_bps`
        of each charge accrues here per token; `sweep_fees` moves it into AccessStaking's
        reward pool when the token is its reward token, else to the treasury.

        Example (exported by UsageMeter):
            meter.sweep_fees(usdc)      # anyone; into the reward pool or to the treasury
@custom:security The fee is capped (MAX_FEE_BPS) and only fees in tokens other than the
        reward token reach the treasury; the deployable's `wire` (once) and `set_fee` (admin)
        write `config` and `treasury`. `sweep_fees` zeroes the balance before paying out
        (checks-effects-interactions) and works while paused.
"""

from ethereum.ercs import IERC20

from interfaces import IAccessStaking
from interfaces import IUsageMeter

from . import masks


# @dev Upper bound of the protocol fee (10%).
MAX_FEE_BPS: public(constant(uint256)) = 1_000


# @dev Basis points in a whole.
BPS: constant(uint256) = 10_000


# @dev Bit offset of the fee in `config`.
FEE_AT: constant(uint256) = 160


# @dev AccessStaking (who serves, TEE signers, the reward pool the protocol fee feeds; zero until
#      `wire`) 160 | protocol fee in bps at bit 160: the two settings every batch reads, one slot.
config: uint256


# @dev Where protocol fees in tokens other than the staking reward token go.
treasury: public(address)


# @dev Protocol fees not yet swept: token => amount.
fee_balance: public(HashMap[address, uint256])


@external
@view
def staking() -> address:
    """
    @dev The AccessStaking wired once by `wire` (zero until then).
    @return address AccessStaking.
    """
    return self.pool()


@external
@view
def protocol_fee_bps() -> uint256:
    """
    @dev The protocol fee, in basis points of each charge.
    @return uint256 The fee (at most MAX_FEE_BPS).
    """
    return self.config >> FEE_AT


@external
def sweep_fees(token: address) -> uint256:
    """
    @dev Moves accrued protocol fees: into the AccessStaking reward pool when `token` is its
         reward token, else to the treasury. Anyone may call; works when paused.
    @param token The token.
    @return uint256 The amount moved.
    """
    amount: uint256 = self.fee_balance[token]
    assert amount > 0, "meter: no fees"
    self.fee_balance[token] = 0
    pool_: address = self.pool()
    if pool_ != empty(address) and staticcall IAccessStaking(pool_).reward_token() == token:
        assert extcall IERC20(token).approve(pool_, amount, default_return_value=True), "meter: approve failed"
        extcall IAccessStaking(pool_).fund_rewards(amount)
        log IUsageMeter.FeesSwept(token=token, amount=amount, to=pool_)
    else:
        to: address = self.treasury
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "meter: transfer failed"
        log IUsageMeter.FeesSwept(token=token, amount=amount, to=to)
    return amount


@internal
@view
def pool() -> address:
    """
    @dev AccessStaking from `config` (zero until `wire`).
    @return address AccessStaking.
    """
    return self.pool_of(self.config)


@internal
@pure
def pool_of(config_: uint256) -> address:
    """
    @dev The AccessStaking field of a `config` word.
    @param config_ A `config` word.
    @return address AccessStaking (zero: not wired).
    """
    return convert(convert(config_ & masks.MASK160, uint160), address)
