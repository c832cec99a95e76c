# pragma version 0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title AccessStaking: CodexField Proof of Access
@custom:contract-name AccessStaking
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Owns the node set of the Proof of Access: stake (bonded and thawing), node
        profiles, the reporter committee and its per-epoch probe reports, every node's
        reliability, strikes and jail record, and the per-epoch reward pools (in `reward_token`).

        Reporter committee: the admin seeds it in the constructor (sitting from epoch 0) and
        changes it with `add_reporter`/`remove_reporter`; a change made during epoch c takes
        effect from epoch c + 1, so the committee of an epoch is fixed before the epoch starts.
        At most MAX_COMMITTEE members; each holds one slot, i.e. one report per (epoch, node).
        A slot is reused only once every epoch its previous member sat in is past reporting.

        Life of an epoch e = [genesis + e * epoch_length, genesis + (e + 1) * epoch_length):
        members of e's committee `submit_reports(e, ...)` from the epoch's start until
        `report_window` seconds after its end; then anyone calls `finalize_epoch(e, max_nodes)`
        until it returns True (epochs finalize in order, one page of nodes per call). A node's
        epoch counts when n, the number of its reports, is a strict majority of e's committee
        (2n > committee size) and at least `quorum`; the contract then takes the median of ALL
        n reports (so a colluding minority of the committee never decides a median while the
        majority reports, whatever the order of arrival), adds the wired UsageMeter's paid-usage
        success of the node in e (weighed by paid MU; free vouchers never count), and updates:

            A  = median_i(successes_i * WAD // probes_i)              availability, WAD
            Lm = median_i(latency_ms_i)                               even count: mean of the middle two (floor)
            L  = WAD - min(WAD, Lm * WAD // latency_max_ms)           latency score, WAD
            U  = (mu - min(failed_mu, mu)) * WAD // mu                usage success (only if mu > 0;
                                                                      both >> 128 first when mu >= 2**128)
            q  = (wA*A + wL*L + wU*U) // (wA + wL + wU)               if mu > 0
               = (wA*A + wL*L) // (wA + wL)                           otherwise
            r' = (alpha*q + (BPS - alpha)*r) // BPS                   reliability (EMA), WAD
            weight = s * r' // WAD * r' // WAD                        s = stake bonded before the epoch ended
            reward = weight * (pool * 1e36 // total_weight) // 1e36   the epoch's pool, pro rata

        q < quality_floor is a strike (a good epoch clears the strikes); `strikes_to_jail`
        consecutive strikes jail the node for `jail_epochs` epochs and slash `slash_bps` of
        its stake + thawing stake (capped by the epoch's slashing capacity, `slash_cap_bps`
        of all bonded + thawing stake, refilled every epoch). Slashed stake never goes to an
        address governance chooses: with `stake_token == reward_token` it joins the reward
        pool of epoch e + 1; otherwise it is burnt (stays in this contract forever, counted in
        `burnt_stake`; no function moves it). The `max_jails`-th jail ejects the node (its
        remaining stake thaws out). Jailed nodes are still scored (reliability can recover)
        but earn nothing and collect no strikes. An epoch without a reporting majority for a
        node does not count for it (no strike, no reward, reliability unchanged). Defaults:
        see `docs/poa.md` and `codexfield/poa.py`.

        Example:
            staking.register_node("https://n1.example", 1 | 8, b"eu-west", tee, 1000e18)
            staking.submit_reports(e, [Report(n1, 20, 19, 180)])       # committee member
            staking.finalize_epoch(e, 100)                             # anyone, after the window
            staking.claim_rewards(n1)

        Genesis is `genesis_` (0 means the deploy block's timestamp). A node price hint per
        MU is set with `update_node` (registration leaves it 0 = no hint).

        This deployable composes one module per mechanism (contracts/modules/, as curve's
        `MintController` composes `controller.vy`) and keeps what joins them: registration,
        reports, `finalize_epoch` (scoring a node: strikes, jails, slashing, reward weight),
        the wiring and the pause. `poa_epochs` the clock and finalization cursor,
        `poa_score` the formula above (and `score_reports`), `poa_nodes` the node set and
        profiles, `poa_committee` the reporter committee, `poa_stake` bonded and thawing
        stake and slashing, `poa_rewards` the pools, pricing and claims. Every event is
        declared once, in `interfaces/IAccessStaking.vyi`.
@custom:security Trusts a majority of each epoch's reporter committee for the probe reports,
        and the UsageMeter wired once (`wire`, never changeable) for per-node usage counters
        (its epochs must match). Stake leaves only through thawing (`thaw_period`, longer
        than one epoch plus the report window), and a withdrawal also waits until every epoch
        that ended before the thaw did is finalized, so thawing stake stays slashable for
        everything the node did while bonded. Slashing per epoch is capped so that a broken
        committee cannot drain the stake. Standard ERC-20 tokens only (no fee-on-transfer or
        rebasing tokens).
@custom:kill Pausing (PAUSER) stops `register_node`, `add_stake` and `submit_reports`. It
        never stops `request_unbond`, `withdraw_unbonded`, `claim_rewards`, `finalize_epoch`
        (withdrawals wait on it), `fund_rewards`, `update_node` or reads.
"""

from interfaces import IAccessStaking
from interfaces import IUsageMeter

implements: IAccessStaking

from .modules import masks
from .modules import poa_tokens

from snekmate.auth import access_control

initializes: access_control

from snekmate.utils import pausable

initializes: pausable

from .modules import poa_epochs

initializes: poa_epochs

from .modules import poa_score

initializes: poa_score

from .modules import poa_nodes

initializes: poa_nodes

from .modules import poa_committee

initializes: poa_committee[access_control := access_control, poa_epochs := poa_epochs]

from .modules import poa_stake

initializes: poa_stake[pausable := pausable, poa_epochs := poa_epochs, poa_nodes := poa_nodes]

from .modules import poa_rewards

initializes: poa_rewards[poa_epochs := poa_epochs, poa_nodes := poa_nodes]

exports: (
    # Roles (admin meant to be a timelock); pausing goes through `pause`/`unpause` below.
    access_control.supportsInterface,
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    pausable.paused,
    # The clock and the finalization cursor.
    poa_epochs.genesis,
    poa_epochs.epoch_length,
    poa_epochs.next_epoch,
    poa_epochs.finalize_cursor,
    poa_epochs.current_epoch,
    # The formula: its constants and the `score_reports` view.
    poa_score.WAD,
    poa_score.BPS,
    poa_score.MAX_COMMITTEE,
    poa_score.score_reports,
    # The node set and profiles (`register_node` is below: it bonds stake too).
    poa_nodes.SERVICE_COMPUTE,
    poa_nodes.SERVICE_STORAGE,
    poa_nodes.SERVICE_EDGE,
    poa_nodes.SERVICE_TEE,
    poa_nodes.SERVICE_TRANSFER,
    poa_nodes.SERVICE_ALL,
    poa_nodes.STATUS_NONE,
    poa_nodes.STATUS_ACTIVE,
    poa_nodes.STATUS_JAILED,
    poa_nodes.STATUS_EJECTED,
    poa_nodes.node_count,
    poa_nodes.endpoint,
    poa_nodes.price_per_mu,
    poa_nodes.update_node,
    poa_nodes.tee_signer,
    poa_nodes.region,
    poa_nodes.node_at,
    # The reporter committee (admin changes it; `submit_reports` below reads it).
    poa_committee.add_reporter,
    poa_committee.remove_reporter,
    poa_committee.committee_size,
    poa_committee.reporter_seat,
    poa_committee.is_reporter,
    # The stake ledger.
    poa_stake.stake_token,
    poa_stake.total_staked,
    poa_stake.total_thawing,
    poa_stake.burnt_stake,
    poa_stake.slash_available,
    poa_stake.add_stake,
    poa_stake.request_unbond,
    poa_stake.withdraw_unbonded,
    poa_stake.node_extra,
    # Epoch rewards.
    poa_rewards.RPW_SCALE,
    poa_rewards.reward_token,
    poa_rewards.reward_pool,
    poa_rewards.epoch_weight,
    poa_rewards.reward_per_weight,
    poa_rewards.rewards_undistributed,
    poa_rewards.rewards_reserved,
    poa_rewards.rewards_credited,
    poa_rewards.fund_rewards,
    poa_rewards.claim_rewards,
    poa_rewards.claimable,
)


# @dev Role that may pause new activity.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev Largest page of `finalize_epoch`.
MAX_PAGE: public(constant(uint256)) = 256


# @dev True when `stake_token == reward_token`: slashed stake then joins the next epoch's reward
#      pool; otherwise it is burnt (kept here forever, counted in `burnt_stake`).
_slash_to_pool: immutable(bool)


# @dev Scoring constants of the jail policy and the reporting quorum (see `params()` and the
#      header; the formula's own constants live in `poa_score`, the stake's in `poa_stake`).
quorum: immutable(uint256)
initial_reliability: immutable(uint256)
quality_floor: immutable(uint256)
strikes_to_jail: immutable(uint256)
jail_epochs: immutable(uint256)
max_jails: immutable(uint256)


# @dev The UsageMeter read for paid-usage success (zero until `wire`; never changes after it).
usage_meter: public(address)


# @dev Reports per (epoch, node), in arrival order: eight slots of two 128-bit lanes. Lane 0 (low
#      half of slot 0): count 8 | committee-slot bitmap 15 @8; lanes 1..15: probes 32 |
#      successes 32 @32 | latency_ms 32 @64.
_reports: HashMap[uint256, HashMap[address, uint256[8]]]


# @dev Reports accepted per epoch (an epoch without reports finalizes in O(1)).
epoch_reports: public(HashMap[uint256, uint256])


@deploy
def __init__(
    stake_token_: address,
    reward_token_: address,
    admin_: address,
    genesis_: uint256,
    epoch_length_: uint256,
    params_: IAccessStaking.Params,
    reporters_: DynArray[address, poa_score.MAX_COMMITTEE],
):
    """
    @dev Grants DEFAULT_ADMIN and PAUSER to `admin_` (meant to be a timelock) and to no one else:
         when `admin_` is not the deployer, the deployer's DEFAULT_ADMIN (granted by snekmate's
         constructor) is revoked here, so RoleGranted/RoleRevoked show the whole handover.
    @param stake_token_ The token nodes stake.
    @param reward_token_ The token rewards are paid in (may be `stake_token_`: slashed stake
           then funds the reward pool, otherwise it is burnt).
    @param admin_ The governance address (DEFAULT_ADMIN, PAUSER).
    @param genesis_ Start of epoch 0 (0: now); not in the future.
    @param epoch_length_ Seconds per epoch (default 86,400).
    @param params_ Scoring and slashing constants (defaults in docs/poa.md).
    @param reporters_ The initial reporter committee (sitting from epoch 0; distinct, non-zero).
    """
    access_control.__init__()
    pausable.__init__()
    assert stake_token_ != empty(address) and reward_token_ != empty(address), "poa: zero token"
    assert admin_ != empty(address), "poa: zero admin"
    assert epoch_length_ > 0, "poa: zero epoch length"
    assert genesis_ <= block.timestamp, "poa: genesis in the future"
    p: IAccessStaking.Params = params_
    assert p.min_stake > 0 and p.min_stake <= poa_stake.MAX_AMOUNT, "poa: bad min stake"
    assert p.thaw_period > epoch_length_ + p.report_window, "poa: thaw too short"
    assert p.quorum >= 1 and p.quorum <= poa_score.MAX_COMMITTEE, "poa: bad quorum"
    assert p.latency_max_ms > 0, "poa: zero latency max"
    assert p.weight_availability_bps + p.weight_latency_bps + p.weight_usage_bps == poa_score.BPS, "poa: bad weights"
    assert p.weight_availability_bps + p.weight_latency_bps > 0, "poa: bad weights"
    assert p.alpha_bps > 0 and p.alpha_bps <= poa_score.BPS, "poa: bad alpha"
    assert p.initial_reliability <= poa_score.WAD and p.quality_floor <= poa_score.WAD, "poa: bad fraction"
    assert p.strikes_to_jail >= 1 and p.strikes_to_jail <= 255, "poa: bad strikes"
    assert p.max_jails >= 1 and p.max_jails <= 255, "poa: bad max jails"
    assert p.jail_epochs >= 1 and p.jail_epochs <= 2**20, "poa: bad jail epochs"
    assert p.slash_bps <= poa_score.BPS and p.slash_cap_bps <= poa_score.BPS, "poa: bad slash"

    g: uint256 = genesis_
    if g == 0:
        g = block.timestamp
    poa_epochs.__init__(g, epoch_length_, p.report_window)
    poa_score.__init__(
        p.latency_max_ms, p.weight_availability_bps, p.weight_latency_bps, p.weight_usage_bps, p.alpha_bps
    )
    poa_stake.__init__(stake_token_, p.min_stake, p.thaw_period, p.slash_bps, p.slash_cap_bps)
    poa_rewards.__init__(reward_token_)
    _slash_to_pool = stake_token_ == reward_token_
    initial_reliability = p.initial_reliability
    quality_floor = p.quality_floor
    quorum = p.quorum
    strikes_to_jail = p.strikes_to_jail
    jail_epochs = p.jail_epochs
    max_jails = p.max_jails

    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)

    poa_committee._seat_initial(reporters_)


# ---------------------------------------------------------------------------------------------
# Nodes: registration (bonds the first stake)
# ---------------------------------------------------------------------------------------------


@external
def register_node(endpoint: String[256], services: uint256, region: bytes8, tee_signer: address, stake: uint256):
    """
    @dev Registers the caller as a node with `stake` (pulled from the caller).
    @notice Needs an allowance of `stake` on `stake_token`. Stake added in an epoch earns from
            the next epoch. Reliability starts at `initial_reliability`.
    @param endpoint The node's public endpoint (URL).
    @param services Service bits: COMPUTE 1, STORAGE 2, EDGE 4, TEE 8, TRANSFER 16 (non-zero).
    @param region A short region code, e.g. b"eu-west".
    @param tee_signer The node's TEE attestation key (required with the TEE bit).
    @param stake The initial stake, at least `min_stake`.
    """
    assert not pausable.paused, "poa: paused"
    status: uint8 = poa_nodes._status_of(poa_nodes._meta[msg.sender])
    assert status != poa_nodes.STATUS_EJECTED, "poa: node ejected"
    assert status == poa_nodes.STATUS_NONE, "poa: already registered"
    poa_nodes._check_profile(endpoint, services, tee_signer)
    assert stake >= poa_stake.min_stake, "poa: stake below minimum"
    assert stake <= poa_stake.MAX_AMOUNT, "poa: amount too large"
    epoch: uint256 = poa_epochs._current_epoch()

    poa_nodes._meta[msg.sender] = (
        initial_reliability | (convert(poa_nodes.STATUS_ACTIVE, uint256) << 80) | (block.timestamp << 192)
    )
    poa_stake._stake[msg.sender] = stake | (stake << 128) | (epoch << 224)
    poa_nodes._profile[msg.sender] = poa_nodes._pack_profile(services, region, tee_signer)
    poa_rewards._bal[msg.sender] |= poa_rewards.BAL_SET
    poa_nodes.endpoint[msg.sender] = endpoint
    n: uint256 = poa_nodes.node_count
    poa_nodes._nodes[n] = msg.sender
    poa_nodes._index[msg.sender] = n
    poa_nodes.node_count = n + 1
    poa_stake.total_staked += stake

    poa_tokens._pull(poa_stake.stake_token, stake)
    log IAccessStaking.NodeRegistered(
        node=msg.sender,
        endpoint=endpoint,
        services=services,
        region=region,
        tee_signer=tee_signer,
        stake=stake,
        reliability=initial_reliability,
    )


# ---------------------------------------------------------------------------------------------
# Reports and scoring
# ---------------------------------------------------------------------------------------------


@external
def submit_reports(epoch: uint256, reports: DynArray[IAccessStaking.Report, 128]):
    """
    @dev Records the caller's probe reports for `epoch` (members of `epoch`'s committee).
    @notice Accepted from the epoch's start until `report_window` seconds after its end; one
            report per (epoch, committee member, node); the whole batch reverts on any bad report.
    @param epoch The epoch the probes were made in.
    @param reports (node, probes > 0, successes <= probes, mean latency in ms) per node.
    """
    assert not pausable.paused, "poa: paused"
    slot: uint256 = poa_committee._slot_of[msg.sender]
    assert slot != 0, "poa: not in committee"
    slot -= 1
    seat: uint256 = poa_committee._seat[slot]
    assert (seat >> 160) & masks.MASK48 <= epoch and epoch < seat >> 208, "poa: not in committee"
    start: uint256 = poa_epochs.genesis + epoch * poa_epochs.epoch_length
    assert block.timestamp >= start, "poa: epoch not started"
    assert block.timestamp < start + poa_epochs.epoch_length + poa_epochs.report_window, "poa: reporting closed"
    bit: uint256 = 1 << (8 + slot)
    for r: IAccessStaking.Report in reports:
        assert r.node != msg.sender, "poa: self report"
        poa_nodes._require_node(r.node)
        assert r.probes > 0, "poa: no probes"
        assert r.successes <= r.probes, "poa: successes exceed probes"
        head: uint256 = self._reports[epoch][r.node][0]
        assert head & bit == 0, "poa: duplicate report"
        packed: uint256 = (
            convert(r.probes, uint256) | (convert(r.successes, uint256) << 32) | (convert(r.latency_ms, uint256) << 64)
        )
        # At most MAX_COMMITTEE reports: one per slot bit, so the count never overflows the lanes.
        lane: uint256 = (head & 255) + 1
        if lane == 1:
            head |= packed << 128
        else:
            self._reports[epoch][r.node][lane // 2] |= packed << (128 * (lane % 2))
        self._reports[epoch][r.node][0] = (head | bit) + 1
        log IAccessStaking.Reported(
            epoch=epoch,
            reporter=msg.sender,
            node=r.node,
            probes=r.probes,
            successes=r.successes,
            latency_ms=r.latency_ms,
        )
    self.epoch_reports[epoch] += len(reports)


@external
def finalize_epoch(epoch: uint256, max_nodes: uint256) -> bool:
    """
    @dev Scores up to `max_nodes` more nodes for `epoch` (anyone; epochs finalize in order).
    @notice Call until it returns True. Slashed stake of the page joins the reward pool of
            `epoch + 1` (same stake and reward token) or is burnt (`burnt_stake`), never paid out
            to anyone. An epoch without reports finalizes in one call and carries its
            reward pool over to the next epoch, as does an epoch in which no node earned.
    @param epoch The epoch; must be `next_epoch` and its report window must be closed.
    @param max_nodes Nodes to score in this call, 1..MAX_PAGE.
    @return bool True when the epoch is final.
    """
    assert epoch == poa_epochs.next_epoch, "poa: not next epoch"
    assert (
        block.timestamp >= poa_epochs.genesis + (epoch + 1) * poa_epochs.epoch_length + poa_epochs.report_window
    ), "poa: reporting open"
    assert max_nodes > 0 and max_nodes <= MAX_PAGE, "poa: bad page size"
    if self.epoch_reports[epoch] == 0:
        poa_rewards._close_epoch(epoch, 0)
        return True

    cursor: uint256 = poa_epochs.finalize_cursor
    count: uint256 = poa_nodes.node_count
    start_count: uint256 = count
    meter: address = self.usage_meter
    committee: uint256 = poa_committee._size_at(epoch)
    weight_sum: uint256 = 0
    slashed_sum: uint256 = 0
    for i: uint256 in range(max_nodes, bound=MAX_PAGE):
        if cursor >= count:
            break
        addr: address = poa_nodes._nodes[cursor]
        w: uint256 = 0
        s: uint256 = 0
        ejected: bool = False
        w, s, ejected = self._score_node(epoch, addr, meter, committee)
        weight_sum += w
        slashed_sum += s
        if ejected:
            # Swap-remove: the last (unscored) node moves into this position.
            count -= 1
            last: address = poa_nodes._nodes[count]
            poa_nodes._nodes[cursor] = last
            poa_nodes._index[last] = cursor
            poa_nodes._nodes[count] = empty(address)
            poa_nodes._index[addr] = 0
        else:
            cursor += 1
    if count != start_count:
        poa_nodes.node_count = count
    if weight_sum != 0:
        poa_rewards.epoch_weight[epoch] += weight_sum
    if slashed_sum != 0:
        if _slash_to_pool:
            poa_rewards.reward_pool[epoch + 1] += slashed_sum
            poa_rewards.rewards_undistributed += slashed_sum
        else:
            poa_stake.burnt_stake += slashed_sum
        log IAccessStaking.StakeSlashed(epoch=epoch, amount=slashed_sum, to_reward_pool=_slash_to_pool)
    if cursor >= count:
        poa_epochs.finalize_cursor = 0
        poa_rewards._close_epoch(epoch, poa_rewards.epoch_weight[epoch])
        return True
    poa_epochs.finalize_cursor = cursor
    return False


# ---------------------------------------------------------------------------------------------
# Governance
# ---------------------------------------------------------------------------------------------


@external
def wire(usage_meter_: address):
    """
    @dev Wires the UsageMeter whose per-node paid usage enters the quality (admin, once; it can
         never change afterwards). Before it, qualities have no usage term.
    @param usage_meter_ The meter; its `epoch_length` and `genesis` must equal this contract's.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self.usage_meter == empty(address), "poa: already wired"
    assert usage_meter_ != empty(address), "poa: zero meter"
    assert (
        staticcall IUsageMeter(usage_meter_).epoch_length() == poa_epochs.epoch_length
        and staticcall IUsageMeter(usage_meter_).genesis() == poa_epochs.genesis
    ), "poa: meter epoch mismatch"
    self.usage_meter = usage_meter_
    log IAccessStaking.Wired(usage_meter=usage_meter_)


@external
def pause():
    """
    @dev Stops registrations, stake additions and reports (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._pause()


@external
def unpause():
    """
    @dev Resumes registrations, stake additions and reports (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._unpause()


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


@external
@view
def is_active(node: address) -> bool:
    """
    @dev True when the node serves now: `serves(node, block.timestamp)`.
    @param node The node.
    @return bool Whether it may serve paid usage now.
    """
    return self._serves(node, block.timestamp)


@external
@view
def serves(node: address, at: uint256) -> bool:
    """
    @dev True when the node was serving at time `at`: registered at or before `at`, not ejected,
         not inside its latest jail at `at`, and bonding at least `min_stake` now (the UsageMeter
         asks it at a voucher's usage time).
    @param node The node.
    @param at A timestamp (a voucher's `issued_at`).
    @return bool Whether usage served at `at` may be paid.
    """
    return self._serves(node, at)


@external
@view
def node(addr: address) -> IAccessStaking.Node:
    """
    @dev A node's state; a jail that has run out reads as ACTIVE.
    @param addr The node.
    @return Node (stake, unbonding, services, status, reliability, strikes, jailed_until).
    """
    meta: uint256 = poa_nodes._meta[addr]
    return IAccessStaking.Node(
        stake=poa_stake._stake[addr] & masks.MASK127,
        unbonding=poa_stake._thaw[addr] & masks.MASK128,
        services=poa_nodes._profile[addr] >> 224,
        status=poa_nodes._status_at(meta, poa_epochs._current_epoch()),
        reliability=meta & masks.MASK64,
        strikes=(meta >> 64) & 255,
        jailed_until=(meta >> 88) & masks.MASK32,
    )


@external
@view
def reports(epoch: uint256, node: address) -> DynArray[IAccessStaking.Sample, poa_score.MAX_COMMITTEE]:
    """
    @dev The reports stored for (epoch, node), in arrival order.
    @param epoch The epoch.
    @param node The node.
    @return DynArray The samples.
    """
    out: DynArray[IAccessStaking.Sample, poa_score.MAX_COMMITTEE] = []
    slots: uint256[8] = self._reports[epoch][node]
    n: uint256 = slots[0] & 255
    for k: uint256 in range(1, poa_score.MAX_COMMITTEE + 1):
        if k > n:
            break
        lane: uint256 = (slots[k // 2] >> (128 * (k % 2))) & masks.MASK128
        out.append(
            IAccessStaking.Sample(
                probes=convert(lane & masks.MASK32, uint32),
                successes=convert((lane >> 32) & masks.MASK32, uint32),
                latency_ms=convert((lane >> 64) & masks.MASK32, uint32),
            )
        )
    return out


@external
@view
def params() -> IAccessStaking.Params:
    """
    @dev The scoring and slashing constants.
    @return Params The constructor parameters.
    """
    return IAccessStaking.Params(
        min_stake=poa_stake.min_stake,
        report_window=poa_epochs.report_window,
        thaw_period=poa_stake.thaw_period,
        quorum=quorum,
        latency_max_ms=poa_score.latency_max_ms,
        weight_availability_bps=poa_score.w_availability,
        weight_latency_bps=poa_score.w_latency,
        weight_usage_bps=poa_score.w_usage,
        alpha_bps=poa_score.alpha_bps,
        initial_reliability=initial_reliability,
        quality_floor=quality_floor,
        strikes_to_jail=strikes_to_jail,
        jail_epochs=jail_epochs,
        max_jails=max_jails,
        slash_bps=poa_stake.slash_bps,
        slash_cap_bps=poa_stake.slash_cap_bps,
    )


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


@internal
@view
def _serves(node: address, at: uint256) -> bool:
    """
    @dev See `serves`.
    @param node The node.
    @param at A timestamp.
    @return bool Whether the node was serving at `at`.
    """
    meta: uint256 = poa_nodes._meta[node]
    status: uint8 = poa_nodes._status_of(meta)
    if status == poa_nodes.STATUS_NONE or status == poa_nodes.STATUS_EJECTED:
        return False
    if at < (meta >> 192) & masks.MASK40:
        return False
    jailed_at: uint256 = (meta >> 152) & masks.MASK40
    if (
        jailed_at != 0
        and at >= jailed_at
        and (at < poa_epochs.genesis + ((meta >> 88) & masks.MASK32) * poa_epochs.epoch_length)
    ):
        return False
    return poa_stake._stake[node] & masks.MASK127 >= poa_stake.min_stake


@internal
def _score_node(epoch: uint256, addr: address, meter: address, committee: uint256) -> (uint256, uint256, bool):
    """
    @dev Scores one node for `epoch`: quality, reliability, strikes, jail, slash, reward weight.
    @param epoch The epoch being finalized.
    @param addr The node.
    @param meter The UsageMeter (zero: none).
    @param committee The size of `epoch`'s reporter committee.
    @return uint256 The node's reward weight for the epoch.
    @return uint256 The amount slashed (pool or burn, by the caller).
    @return bool Whether the node was ejected.
    """
    head: uint256 = self._reports[epoch][addr][0]
    n: uint256 = head & 255
    if n < quorum or 2 * n <= committee:
        return 0, 0, False

    avail: DynArray[uint256, poa_score.MAX_COMMITTEE] = []
    lat: DynArray[uint256, poa_score.MAX_COMMITTEE] = []
    slot: uint256 = head
    for k: uint256 in range(1, poa_score.MAX_COMMITTEE + 1):
        if k > n:
            break
        if k % 2 == 0:
            slot = self._reports[epoch][addr][k // 2]
        lane: uint256 = (slot >> (128 * (k % 2))) & masks.MASK128
        avail.append(((lane >> 32) & masks.MASK32) * poa_score.WAD // (lane & masks.MASK32))
        lat.append((lane >> 64) & masks.MASK32)

    mu: uint256 = 0
    failed_mu: uint256 = 0
    if meter != empty(address):
        u: IUsageMeter.NodeUsage = staticcall IUsageMeter(meter).node_usage(addr, epoch)
        mu = u.mu
        failed_mu = u.failed_mu

    meta: uint256 = poa_nodes._meta[addr]
    q: uint256 = 0
    r: uint256 = 0
    q, r = poa_score._quality(poa_score._median(avail), poa_score._median(lat), mu, failed_mu, meta & masks.MASK64)

    bal: uint256 = poa_rewards._bal[addr]
    settled: uint256 = 0
    meta, bal, settled = poa_rewards._settle(meta, bal, epoch)
    if settled != 0:
        poa_rewards.rewards_reserved -= settled
        poa_rewards.rewards_credited += settled

    strikes: uint256 = (meta >> 64) & 255
    jails: uint256 = (meta >> 72) & 255
    status: uint8 = poa_nodes._status_of(meta)
    jailed_until: uint256 = (meta >> 88) & masks.MASK32
    jailed_at: uint256 = (meta >> 152) & masks.MASK40
    weight: uint256 = 0
    slashed: uint256 = 0
    ejected: bool = False
    if status == poa_nodes.STATUS_JAILED and epoch >= jailed_until:
        status = poa_nodes.STATUS_ACTIVE
    if status == poa_nodes.STATUS_ACTIVE:
        if q < quality_floor:
            strikes += 1
        else:
            strikes = 0
        if strikes >= strikes_to_jail:
            strikes = 0
            jails += 1
            jailed_until = epoch + 1 + jail_epochs
            jailed_at = block.timestamp
            slashed = poa_stake._slash(addr, epoch)
            log IAccessStaking.NodeJailed(node=addr, until=jailed_until, slashed=slashed)
            if jails >= max_jails:
                status = poa_nodes.STATUS_EJECTED
                ejected = True
                poa_stake._eject(addr)
            else:
                status = poa_nodes.STATUS_JAILED
        else:
            # Stake added in `epoch` or later does not earn in `epoch`.
            word: uint256 = poa_stake._stake[addr]
            stake: uint256 = word & masks.MASK127
            excluded: uint256 = 0
            if word >> 224 >= epoch:
                excluded = (word >> 128) & masks.MASK96
            if word & poa_stake.OLDER != 0:
                older: uint256 = poa_stake._stake_older[addr]
                if older >> 128 >= epoch:
                    excluded += older & masks.MASK128
            stake -= min(excluded, stake)
            weight = stake * r // poa_score.WAD * r // poa_score.WAD
    pending: uint256 = 0
    if weight != 0:
        pending = epoch + 1
    poa_nodes._meta[addr] = (
        r
        | (strikes << 64)
        | (jails << 72)
        | (convert(status, uint256) << 80)
        | (jailed_until << 88)
        | (pending << 120)
        | (jailed_at << 152)
        | ((meta >> 192) << 192)
    )
    poa_rewards._bal[addr] = (bal & masks.MASK128) | (weight << 128) | poa_rewards.BAL_SET
    log IAccessStaking.EpochScored(epoch=epoch, node=addr, quality=q, reliability=r, weight=weight, strikes=strikes)
    return weight, slashed, ejected
