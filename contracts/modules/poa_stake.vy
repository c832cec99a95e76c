# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Proof of Access stake ledger: bonded stake, thawing stake, slashing
@custom:contract-name poa_stake
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns every node's stake in AccessStaking: the bonded stake (with the additions of
        still-unfinalized epochs kept apart, since stake added in an epoch earns from the
        next one), the thawing bucket and its end, the totals, and slashing (the per-epoch
        capacity and the burnt stake). Stake leaves only through thawing (`thaw_period`,
        longer than one epoch plus the report window) and a withdrawal also waits until every
        epoch that ended before the thaw did is finalized, so thawing stake stays slashable for
        everything the node did while bonded (Graph Horizon's rule).

        Example (exported by AccessStaking):
            staking.add_stake(500e18, sender=node)             # earns from the next epoch
            staking.request_unbond(200e18, sender=node)        # thaws for `thaw_period`
            staking.withdraw_unbonded(sender=node)             # after the thaw and finalization
@custom:security Pulls and pushes `stake_token` only after its state writes (CEI). Slashed
        stake is routed by the deployable's `finalize_epoch` (next reward pool or `burnt_stake`),
        never to an address. Pausing stops `add_stake` only; unbonding and withdrawing always
        work.
"""

from interfaces import IAccessStaking

from snekmate.utils import pausable

uses: pausable

from . import poa_epochs

uses: poa_epochs

from . import poa_nodes

uses: poa_nodes

from . import poa_score
from . import poa_tokens
from . import masks


# @dev Largest single stake movement (stake words pack 128/96-bit fields).
MAX_AMOUNT: constant(uint256) = 2**96 - 1


# @dev The flag bit of the stake word.
OLDER: constant(uint256) = 1 << 127


# @dev The token nodes stake.
stake_token: public(immutable(address))


# @dev Least bonded stake of a serving node.
min_stake: immutable(uint256)


# @dev Seconds a thawing bucket waits before it can be withdrawn.
thaw_period: immutable(uint256)


# @dev Share of stake + thawing stake slashed per jail, in basis points.
slash_bps: immutable(uint256)


# @dev Most slashed per epoch, in basis points of all bonded + thawing stake.
slash_cap_bps: immutable(uint256)


# @dev Stake word: bonded stake 127 | older-addition flag 1 @127 | stake added in the latest
#      addition epoch 96 @128 | that epoch 32 @224. With the flag, `_stake_older` holds an earlier
#      addition still inside an unfinalized epoch: amount 128 | epoch 32 @128.
_stake: HashMap[address, uint256]
_stake_older: HashMap[address, uint256]


# @dev Thawing word: thawing stake 128 | thaw end timestamp 64 @128.
_thaw: HashMap[address, uint256]


# @dev Σ bonded stake and Σ thawing stake.
total_staked: public(uint256)
total_thawing: public(uint256)


# @dev Slashed stake burnt (stake_token != reward_token): held here forever, moved by nothing.
burnt_stake: public(uint256)


# @dev Slashing capacity left in the epoch being finalized, and that epoch + 1.
slash_available: public(uint256)
_slash_epoch: uint256


@deploy
def __init__(
    stake_token_: address, min_stake_: uint256, thaw_period_: uint256, slash_bps_: uint256, slash_cap_bps_: uint256
):
    """
    @dev Sets the ledger's constants (the deployable checked them).
    @param stake_token_ The token nodes stake.
    @param min_stake_ Least bonded stake of a serving node.
    @param thaw_period_ Thaw in seconds.
    @param slash_bps_ Slash per jail, bps.
    @param slash_cap_bps_ Slash cap per epoch, bps.
    """
    stake_token = stake_token_
    min_stake = min_stake_
    thaw_period = thaw_period_
    slash_bps = slash_bps_
    slash_cap_bps = slash_cap_bps_


@external
def add_stake(amount: uint256):
    """
    @dev Adds `amount` (pulled from the caller) to the caller's bonded stake.
    @notice The added stake earns from the epoch after this one.
    @param amount The amount (non-zero).
    """
    assert not pausable.paused, "poa: paused"
    poa_nodes._require_node(msg.sender)
    assert amount > 0, "poa: zero amount"
    assert amount <= MAX_AMOUNT, "poa: amount too large"
    word: uint256 = self._stake[msg.sender]
    stake: uint256 = (word & masks.MASK127) + amount
    recent: uint256 = (word >> 128) & masks.MASK96
    recent_epoch: uint256 = word >> 224
    older_flag: uint256 = word & OLDER
    epoch: uint256 = poa_epochs._current_epoch()
    final: uint256 = poa_epochs.next_epoch
    if recent == 0 or recent_epoch < final:
        # Every earlier addition's epoch is final: it counts from now on.
        recent = amount
        older_flag = 0
    elif recent_epoch == epoch:
        recent += amount
    else:
        # The latest addition's epoch is not final yet: keep it apart (older bucket) so that it is
        # excluded from its own epoch and counted from the next one. A third pending epoch merges
        # into the older bucket under the later epoch (conservative: never overcounts).
        older: uint256 = recent
        if older_flag != 0:
            prev: uint256 = self._stake_older[msg.sender]
            if prev >> 128 >= final:
                older += prev & masks.MASK128
        self._stake_older[msg.sender] = older | (recent_epoch << 128)
        older_flag = OLDER
        recent = amount
    recent = min(recent, stake)
    assert stake <= masks.MASK127 and recent <= masks.MASK96, "poa: amount too large"
    self._stake[msg.sender] = stake | older_flag | (recent << 128) | (epoch << 224)
    self.total_staked += amount
    poa_tokens._pull(stake_token, amount)
    thaw: uint256 = self._thaw[msg.sender]
    log IAccessStaking.StakeChanged(node=msg.sender, stake=stake, unbonding=thaw & masks.MASK128, thaw_end=thaw >> 128)


@external
def request_unbond(amount: uint256):
    """
    @dev Moves `amount` of the caller's bonded stake into its thawing bucket.
    @notice The whole bucket's thaw restarts: it can be withdrawn `thaw_period` seconds from
            now, once every epoch that ended by then is finalized. Thawing stake earns nothing
            and stays slashable. The stake left must be 0 or at least `min_stake`.
    @param amount The amount (non-zero, at most the bonded stake).
    """
    poa_nodes._require_node(msg.sender)
    assert amount > 0, "poa: zero amount"
    word: uint256 = self._stake[msg.sender]
    stake: uint256 = word & masks.MASK127
    assert amount <= stake, "poa: insufficient stake"
    stake -= amount
    assert stake == 0 or stake >= min_stake, "poa: below min stake"
    recent: uint256 = min((word >> 128) & masks.MASK96, stake)
    self._stake[msg.sender] = stake | (word & OLDER) | (recent << 128) | ((word >> 224) << 224)
    thaw: uint256 = self._thaw[msg.sender]
    thawing: uint256 = (thaw & masks.MASK128) + amount
    thaw_end: uint256 = block.timestamp + thaw_period
    self._thaw[msg.sender] = thawing | (thaw_end << 128)
    self.total_staked -= amount
    self.total_thawing += amount
    log IAccessStaking.UnbondRequested(node=msg.sender, amount=amount, unbonding=thawing, thaw_end=thaw_end)
    log IAccessStaking.StakeChanged(node=msg.sender, stake=stake, unbonding=thawing, thaw_end=thaw_end)


@external
def withdraw_unbonded() -> uint256:
    """
    @dev Pays the caller's thawed stake out (works while paused, also for ejected nodes).
    @notice Needs the thaw to be over and every epoch that ended before the thaw end to be
            finalized (anyone may call `finalize_epoch`).
    @return uint256 The amount withdrawn.
    """
    thaw: uint256 = self._thaw[msg.sender]
    amount: uint256 = thaw & masks.MASK128
    thaw_end: uint256 = thaw >> 128
    assert amount > 0, "poa: nothing to withdraw"
    assert block.timestamp >= thaw_end, "poa: still thawing"
    assert poa_epochs.next_epoch >= poa_epochs._epoch_at(thaw_end), "poa: epochs not finalized"
    self._thaw[msg.sender] = thaw_end << 128
    self.total_thawing -= amount
    poa_tokens._push(stake_token, msg.sender, amount)
    log IAccessStaking.Withdrawn(node=msg.sender, amount=amount)
    log IAccessStaking.StakeChanged(
        node=msg.sender, stake=self._stake[msg.sender] & masks.MASK127, unbonding=0, thaw_end=thaw_end
    )
    return amount


@external
@view
def node_extra(node: address) -> (uint256, uint256, uint256, uint256):
    """
    @dev Bookkeeping not in `node()`.
    @param node The node.
    @return uint256 Jails so far.
    @return uint256 Thaw end timestamp of the unbonding stake.
    @return uint256 Stake added recently (not earning yet).
    @return uint256 Epoch of that addition.
    """
    word: uint256 = self._stake[node]
    return (poa_nodes._meta[node] >> 72) & 255, self._thaw[node] >> 128, (word >> 128) & masks.MASK96, word >> 224


@internal
def _slash(addr: address, epoch: uint256) -> uint256:
    """
    @dev Slashes `slash_bps` of the node's stake + thawing stake, within the epoch's capacity;
         bonded stake goes first. The caller (`finalize_epoch`) routes the amount (pool or burn).
    @param addr The node.
    @param epoch The epoch being finalized.
    @return uint256 The amount slashed.
    """
    if self._slash_epoch != epoch + 1:
        self._slash_epoch = epoch + 1
        self.slash_available = (self.total_staked + self.total_thawing) * slash_cap_bps // poa_score.BPS
    word: uint256 = self._stake[addr]
    thaw: uint256 = self._thaw[addr]
    stake: uint256 = word & masks.MASK127
    thawing: uint256 = thaw & masks.MASK128
    available: uint256 = self.slash_available
    amount: uint256 = min((stake + thawing) * slash_bps // poa_score.BPS, available)
    if amount == 0:
        return 0
    self.slash_available = available - amount
    from_stake: uint256 = min(amount, stake)
    from_thaw: uint256 = amount - from_stake
    stake -= from_stake
    thawing -= from_thaw
    recent: uint256 = min((word >> 128) & masks.MASK96, stake)
    self._stake[addr] = stake | (word & OLDER) | (recent << 128) | ((word >> 224) << 224)
    self.total_staked -= from_stake
    if from_thaw != 0:
        self._thaw[addr] = thawing | ((thaw >> 128) << 128)
        self.total_thawing -= from_thaw
    log IAccessStaking.StakeChanged(node=addr, stake=stake, unbonding=thawing, thaw_end=thaw >> 128)
    return amount


@internal
def _eject(addr: address):
    """
    @dev Moves an ejected node's bonded stake into its thawing bucket (thaw restarts).
    @param addr The node.
    """
    word: uint256 = self._stake[addr]
    stake: uint256 = word & masks.MASK127
    thaw: uint256 = self._thaw[addr]
    thawing: uint256 = (thaw & masks.MASK128) + stake
    thaw_end: uint256 = max(thaw >> 128, block.timestamp + thaw_period)
    self._stake[addr] = 0
    self._thaw[addr] = thawing | (thaw_end << 128)
    self.total_staked -= stake
    self.total_thawing += stake
    log IAccessStaking.NodeEjected(node=addr, unbonding=thawing, thaw_end=thaw_end)
    log IAccessStaking.StakeChanged(node=addr, stake=0, unbonding=thawing, thaw_end=thaw_end)
