# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Proof of Access epoch rewards: pools, pricing, claims
@custom:contract-name poa_rewards
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns the per-epoch reward pools of AccessStaking (in `reward_token`) and every node's
        reward word. Anyone funds the current epoch's pool (`fund_rewards`; the UsageMeter's
        protocol fee arrives here). When an epoch is fully scored, `_close_epoch` prices it:
        reward per unit of weight = pool * RPW_SCALE // total weight (no weight: the pool
        carries over to the next epoch). A node's scored weight waits in its reward word until
        its epoch is final; `_settle` then credits weight * price // RPW_SCALE, lazily (in the
        node's next scoring or its claim), so no call loops over nodes. Accounting:
        rewards_undistributed (pools of unfinalized epochs) + rewards_reserved (priced, not yet
        credited, incl. rounding dust) + rewards_credited (credited, unclaimed) is what the
        contract owes in `reward_token`.

        Example (exported by AccessStaking):
            staking.fund_rewards(1_000e6, sender=funder)
            staking.claimable(node)        # what claim_rewards(node) pays now
            staking.claim_rewards(node)    # anyone; the tokens go to the node
@custom:security Pull payments only: `claim_rewards` pays the node itself, after its state
        writes (CEI). Neither function is stopped by pausing.
"""

from interfaces import IAccessStaking

from . import poa_epochs

uses: poa_epochs

from . import poa_nodes

uses: poa_nodes

from . import poa_tokens
from . import masks


# @dev Scale of the per-epoch reward-per-weight accumulator.
RPW_SCALE: public(constant(uint256)) = 10**36


# @dev The always-set bit of a registered node's reward word.
BAL_SET: constant(uint256) = 1 << 255


# @dev The token rewards are paid in (may equal the stake token).
reward_token: public(immutable(address))


# @dev Reward word: credited rewards 128 | weight of the pending (scored, not yet priced) epoch 127 @128 |
#      bit 255 set at registration (so that scoring never writes a fresh slot).
_bal: HashMap[address, uint256]


# @dev Reward pool per epoch (funded while the epoch is current, plus carry-over).
reward_pool: public(HashMap[uint256, uint256])


# @dev Sum of the weights scored in an epoch.
epoch_weight: public(HashMap[uint256, uint256])


# @dev Reward per unit of weight of a finalized epoch, scaled by RPW_SCALE.
reward_per_weight: public(HashMap[uint256, uint256])


# @dev Reward token accounting: pools of unfinalized epochs; priced for finalized epochs but
#      not yet credited to a node (incl. rounding dust); credited to nodes and unclaimed.
rewards_undistributed: public(uint256)
rewards_reserved: public(uint256)
rewards_credited: public(uint256)


@deploy
def __init__(reward_token_: address):
    """
    @dev Sets the reward token (the deployable checked it).
    @param reward_token_ The token rewards are paid in.
    """
    reward_token = reward_token_


@external
def fund_rewards(amount: uint256):
    """
    @dev Pulls `amount` of `reward_token` from the caller into the current epoch's pool
         (anyone; the UsageMeter's protocol fees arrive here). Works while paused.
    @param amount The amount (non-zero).
    """
    assert amount > 0, "poa: zero amount"
    epoch: uint256 = poa_epochs._current_epoch()
    self.reward_pool[epoch] += amount
    self.rewards_undistributed += amount
    poa_tokens._pull(reward_token, amount)
    log IAccessStaking.RewardsFunded(epoch=epoch, funder=msg.sender, amount=amount)


@external
def claim_rewards(node: address) -> uint256:
    """
    @dev Pays `node` every reward it earned in finalized epochs (anyone may trigger it; the
         tokens always go to the node). O(1). Works while paused.
    @param node The node.
    @return uint256 The amount paid (0 when nothing is due).
    """
    meta: uint256 = poa_nodes._meta[node]
    bal: uint256 = self._bal[node]
    settled: uint256 = 0
    meta, bal, settled = self._settle(meta, bal, poa_epochs.next_epoch)
    amount: uint256 = bal & masks.MASK128
    if settled != 0:
        poa_nodes._meta[node] = meta
        self.rewards_reserved -= settled
        self.rewards_credited += settled
    if amount == 0:
        if settled != 0:
            self._bal[node] = bal
        return 0
    self._bal[node] = bal & ~masks.MASK128
    self.rewards_credited -= amount
    poa_tokens._push(reward_token, node, amount)
    log IAccessStaking.RewardsClaimed(node=node, amount=amount)
    return amount


@external
@view
def claimable(node: address) -> uint256:
    """
    @dev Rewards `claim_rewards(node)` would pay now.
    @param node The node.
    @return uint256 The amount.
    """
    meta: uint256 = poa_nodes._meta[node]
    bal: uint256 = self._bal[node]
    settled: uint256 = 0
    meta, bal, settled = self._settle(meta, bal, poa_epochs.next_epoch)
    return bal & masks.MASK128


@internal
@view
def _settle(meta: uint256, bal: uint256, next_epoch: uint256) -> (uint256, uint256, uint256):
    """
    @dev Prices the node's pending epoch if it is final and credits its reward.
    @param meta The node's hot word.
    @param bal The node's reward word.
    @param next_epoch The first epoch that is not final.
    @return uint256 The new hot word.
    @return uint256 The new reward word.
    @return uint256 The amount credited.
    """
    pending: uint256 = (meta >> 120) & masks.MASK32
    if pending == 0 or pending - 1 >= next_epoch:
        return meta, bal, 0
    weight: uint256 = (bal >> 128) & masks.MASK127
    amount: uint256 = weight * self.reward_per_weight[pending - 1] // RPW_SCALE
    return meta & ~(masks.MASK32 << 120), (bal & ~masks.MASK128) + (bal & masks.MASK128) + amount, amount


@internal
def _close_epoch(epoch: uint256, total_weight: uint256):
    """
    @dev Prices a fully scored epoch; with no weight its pool carries over to the next epoch.
    @param epoch The epoch.
    @param total_weight The sum of the weights scored in it.
    """
    pool: uint256 = self.reward_pool[epoch]
    rpw: uint256 = 0
    carried: uint256 = 0
    if total_weight == 0:
        carried = pool
        if pool != 0:
            self.reward_pool[epoch + 1] += pool
    else:
        rpw = pool * RPW_SCALE // total_weight
        self.reward_per_weight[epoch] = rpw
        self.rewards_undistributed -= pool
        self.rewards_reserved += pool
    poa_epochs.next_epoch = epoch + 1
    log IAccessStaking.EpochFinalized(
        epoch=epoch, pool=pool, total_weight=total_weight, reward_per_weight=rpw, carried=carried
    )
