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

from ethereum.ercs import IERC20

from interfaces import IAccessStaking
from interfaces import IUsageMeter

implements: IAccessStaking

from snekmate.auth import access_control
initializes: access_control

from snekmate.utils import pausable
initializes: pausable


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
)


# @dev Role that may pause new activity.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev Fixed-point one.
WAD: public(constant(uint256)) = 10**18


# @dev Basis points in a whole.
BPS: public(constant(uint256)) = 10_000


# @dev Scale of the per-epoch reward-per-weight accumulator.
RPW_SCALE: public(constant(uint256)) = 10**36


# @dev Largest reporter committee (one report slot per member and (epoch, node)).
MAX_COMMITTEE: public(constant(uint256)) = 15


# @dev Largest page of `finalize_epoch`.
MAX_PAGE: public(constant(uint256)) = 256


# @dev Service bits.
SERVICE_COMPUTE: public(constant(uint256)) = 1
SERVICE_STORAGE: public(constant(uint256)) = 2
SERVICE_EDGE: public(constant(uint256)) = 4
SERVICE_TEE: public(constant(uint256)) = 8
SERVICE_TRANSFER: public(constant(uint256)) = 16
SERVICE_ALL: public(constant(uint256)) = 31


# @dev Node status (as in IAccessStaking).
STATUS_NONE: public(constant(uint8)) = 0
STATUS_ACTIVE: public(constant(uint8)) = 1
STATUS_JAILED: public(constant(uint8)) = 2
STATUS_EJECTED: public(constant(uint8)) = 3


# @dev Largest single stake movement (stake words pack 128/96-bit fields).
MAX_AMOUNT: constant(uint256) = 2**96 - 1


_MASK32: constant(uint256) = 2**32 - 1
_MASK40: constant(uint256) = 2**40 - 1
_MASK48: constant(uint256) = 2**48 - 1
_MASK64: constant(uint256) = 2**64 - 1
_MASK96: constant(uint256) = 2**96 - 1
_MASK127: constant(uint256) = 2**127 - 1
_MASK128: constant(uint256) = 2**128 - 1
_MASK160: constant(uint256) = 2**160 - 1


# @dev The token nodes stake.
stake_token: public(immutable(address))


# @dev The token rewards are paid in (may equal `stake_token`).
reward_token: public(immutable(address))


# @dev True when `stake_token == reward_token`: slashed stake then joins the next epoch's reward
#      pool; otherwise it is burnt (kept here forever, counted in `burnt_stake`).
_slash_to_pool: immutable(bool)


# @dev Timestamp at which epoch 0 starts.
genesis: public(immutable(uint256))


# @dev Seconds per epoch.
epoch_length: public(immutable(uint256))


# @dev Scoring and slashing constants (see `params()` and the header formula).
min_stake: immutable(uint256)
report_window: immutable(uint256)
thaw_period: immutable(uint256)
quorum: immutable(uint256)
latency_max_ms: immutable(uint256)
w_availability: immutable(uint256)
w_latency: immutable(uint256)
w_usage: immutable(uint256)
alpha_bps: immutable(uint256)
initial_reliability: immutable(uint256)
quality_floor: immutable(uint256)
strikes_to_jail: immutable(uint256)
jail_epochs: immutable(uint256)
max_jails: immutable(uint256)
slash_bps: immutable(uint256)
slash_cap_bps: immutable(uint256)


# @dev The UsageMeter read for paid-usage success (zero until `wire`; never changes after it).
usage_meter: public(address)


# @dev "Never ends" value of a committee seat's `until` epoch.
_OPEN: constant(uint256) = 2**48 - 1


# @dev Committee seat per slot: member 160 | first epoch it sits 48 @160 | first epoch it no
#      longer sits 48 @208 (_OPEN: still a member). Zero: free slot.
_seat: HashMap[uint256, uint256]


# @dev Slot + 1 of an address's latest seat (0: none).
_slot_of: HashMap[address, uint256]


# @dev Committee size checkpoints: index -> from epoch 248 @8 | size 8; and their count. The size
#      of epoch e is the size of the last checkpoint whose from epoch is <= e.
_size_cp: HashMap[uint256, uint256]
_size_cp_count: uint256


# @dev Next epoch to finalize (every earlier epoch is final).
next_epoch: public(uint256)


# @dev Index of the next node to score in `next_epoch` (pagination cursor).
finalize_cursor: public(uint256)


# @dev Registered, non-ejected nodes (index -> address), and their count.
_nodes: HashMap[uint256, address]
node_count: public(uint256)


# @dev Position of a node in `_nodes`.
_index: HashMap[address, uint256]


# @dev Hot node word: reliability 64 | strikes 8 @64 | jails 8 @72 | status 8 @80 |
#      jailed_until 32 @88 | pending epoch + 1 32 @120 (0: none) | timestamp of the latest jail
#      40 @152 | registration timestamp 40 @192.
_meta: HashMap[address, uint256]


# @dev Reward word: credited rewards 128 | weight of the pending (scored, not yet priced) epoch 127 @128 |
#      bit 255 set at registration (so that scoring never writes a fresh slot).
_bal: HashMap[address, uint256]


# @dev The always-set bit of a registered node's reward word.
_BAL_SET: constant(uint256) = 1 << 255


# @dev Stake word: bonded stake 127 | older-addition flag 1 @127 | stake added in the latest
#      addition epoch 96 @128 | that epoch 32 @224. With the flag, `_stake_older` holds an earlier
#      addition still inside an unfinalized epoch: amount 128 | epoch 32 @128.
_stake: HashMap[address, uint256]
_stake_older: HashMap[address, uint256]


# @dev The flag bit of the stake word.
_OLDER: constant(uint256) = 1 << 127


# @dev Thawing word: thawing stake 128 | thaw end timestamp 64 @128.
_thaw: HashMap[address, uint256]


# @dev Profile word: tee signer 160 | region 64 @160 | services 32 @224.
_profile: HashMap[address, uint256]


# @dev Node endpoint URL.
endpoint: public(HashMap[address, String[256]])


# @dev Node price hint per MU (0: none), in the UsageMeter's payment token units.
price_per_mu: public(HashMap[address, uint256])


# @dev Reports per (epoch, node), in arrival order: eight slots of two 128-bit lanes. Lane 0 (low
#      half of slot 0): count 8 | committee-slot bitmap 15 @8; lanes 1..15: probes 32 |
#      successes 32 @32 | latency_ms 32 @64.
_reports: HashMap[uint256, HashMap[address, uint256[8]]]


# @dev Reports accepted per epoch (an epoch without reports finalizes in O(1)).
epoch_reports: public(HashMap[uint256, uint256])


# @dev Reward pool per epoch (funded while the epoch is current, plus carry-over).
reward_pool: public(HashMap[uint256, uint256])


# @dev Sum of the weights scored in an epoch.
epoch_weight: public(HashMap[uint256, uint256])


# @dev Reward per unit of weight of a finalized epoch, scaled by RPW_SCALE.
reward_per_weight: public(HashMap[uint256, uint256])


# @dev Σ bonded stake and Σ thawing stake.
total_staked: public(uint256)
total_thawing: public(uint256)


# @dev Reward token accounting: pools of unfinalized epochs; priced for finalized epochs but
#      not yet credited to a node (incl. rounding dust); credited to nodes and unclaimed.
rewards_undistributed: public(uint256)
rewards_reserved: public(uint256)
rewards_credited: public(uint256)


# @dev Slashed stake burnt (stake_token != reward_token): held here forever, moved by nothing.
burnt_stake: public(uint256)


# @dev Slashing capacity left in the epoch being finalized, and that epoch + 1.
slash_available: public(uint256)
_slash_epoch: uint256


@deploy
def __init__(
    stake_token_: address,
    reward_token_: address,
    admin_: address,
    genesis_: uint256,
    epoch_length_: uint256,
    params_: IAccessStaking.Params,
    reporters_: DynArray[address, MAX_COMMITTEE],
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
    assert p.min_stake > 0 and p.min_stake <= MAX_AMOUNT, "poa: bad min stake"
    assert p.thaw_period > epoch_length_ + p.report_window, "poa: thaw too short"
    assert p.quorum >= 1 and p.quorum <= MAX_COMMITTEE, "poa: bad quorum"
    assert p.latency_max_ms > 0, "poa: zero latency max"
    assert p.weight_availability_bps + p.weight_latency_bps + p.weight_usage_bps == BPS, "poa: bad weights"
    assert p.weight_availability_bps + p.weight_latency_bps > 0, "poa: bad weights"
    assert p.alpha_bps > 0 and p.alpha_bps <= BPS, "poa: bad alpha"
    assert p.initial_reliability <= WAD and p.quality_floor <= WAD, "poa: bad fraction"
    assert p.strikes_to_jail >= 1 and p.strikes_to_jail <= 255, "poa: bad strikes"
    assert p.max_jails >= 1 and p.max_jails <= 255, "poa: bad max jails"
    assert p.jail_epochs >= 1 and p.jail_epochs <= 2**20, "poa: bad jail epochs"
    assert p.slash_bps <= BPS and p.slash_cap_bps <= BPS, "poa: bad slash"

    stake_token = stake_token_
    reward_token = reward_token_
    _slash_to_pool = stake_token_ == reward_token_
    epoch_length = epoch_length_
    g: uint256 = genesis_
    if g == 0:
        g = block.timestamp
    genesis = g
    min_stake = p.min_stake
    report_window = p.report_window
    thaw_period = p.thaw_period
    latency_max_ms = p.latency_max_ms
    initial_reliability = p.initial_reliability
    quality_floor = p.quality_floor
    quorum = p.quorum
    w_availability = p.weight_availability_bps
    w_latency = p.weight_latency_bps
    w_usage = p.weight_usage_bps
    alpha_bps = p.alpha_bps
    strikes_to_jail = p.strikes_to_jail
    jail_epochs = p.jail_epochs
    max_jails = p.max_jails
    slash_bps = p.slash_bps
    slash_cap_bps = p.slash_cap_bps

    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)

    slot: uint256 = 0
    for r: address in reporters_:
        assert r != empty(address), "poa: zero reporter"
        assert self._slot_of[r] == 0, "poa: already a reporter"
        self._seat[slot] = convert(convert(r, uint160), uint256) | (_OPEN << 208)
        self._slot_of[r] = slot + 1
        log IAccessStaking.ReporterAdded(reporter=r, slot=slot, from_epoch=0)
        slot += 1
    if slot != 0:
        self._size_cp[0] = slot
        self._size_cp_count = 1


# ---------------------------------------------------------------------------------------------
# Nodes: registration, profile, stake
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
    status: uint8 = self._status_of(self._meta[msg.sender])
    assert status != STATUS_EJECTED, "poa: node ejected"
    assert status == STATUS_NONE, "poa: already registered"
    self._check_profile(endpoint, services, tee_signer)
    assert stake >= min_stake, "poa: stake below minimum"
    assert stake <= MAX_AMOUNT, "poa: amount too large"
    epoch: uint256 = self._current_epoch()

    self._meta[msg.sender] = (
        initial_reliability | (convert(STATUS_ACTIVE, uint256) << 80) | (block.timestamp << 192)
    )
    self._stake[msg.sender] = stake | (stake << 128) | (epoch << 224)
    self._profile[msg.sender] = self._pack_profile(services, region, tee_signer)
    self._bal[msg.sender] |= _BAL_SET
    self.endpoint[msg.sender] = endpoint
    n: uint256 = self.node_count
    self._nodes[n] = msg.sender
    self._index[msg.sender] = n
    self.node_count = n + 1
    self.total_staked += stake

    self._pull(stake_token, stake)
    log IAccessStaking.NodeRegistered(
        node=msg.sender,
        endpoint=endpoint,
        services=services,
        region=region,
        tee_signer=tee_signer,
        stake=stake,
        reliability=initial_reliability,
    )


@external
def update_node(endpoint: String[256], services: uint256, region: bytes8, tee_signer: address, price_per_mu: uint256):
    """
    @dev Replaces the caller's profile (works while paused and while jailed).
    @param endpoint The node's public endpoint (URL).
    @param services Service bits (non-zero, within SERVICE_ALL).
    @param region A short region code.
    @param tee_signer The node's TEE attestation key (required with the TEE bit).
    @param price_per_mu The node's price hint per MU (0: none).
    """
    self._require_node(msg.sender)
    self._check_profile(endpoint, services, tee_signer)
    self._profile[msg.sender] = self._pack_profile(services, region, tee_signer)
    self.endpoint[msg.sender] = endpoint
    self.price_per_mu[msg.sender] = price_per_mu
    log IAccessStaking.NodeUpdated(
        node=msg.sender,
        endpoint=endpoint,
        services=services,
        region=region,
        tee_signer=tee_signer,
        price_per_mu=price_per_mu,
    )


@external
def add_stake(amount: uint256):
    """
    @dev Adds `amount` (pulled from the caller) to the caller's bonded stake.
    @notice The added stake earns from the epoch after this one.
    @param amount The amount (non-zero).
    """
    assert not pausable.paused, "poa: paused"
    self._require_node(msg.sender)
    assert amount > 0, "poa: zero amount"
    assert amount <= MAX_AMOUNT, "poa: amount too large"
    word: uint256 = self._stake[msg.sender]
    stake: uint256 = (word & _MASK127) + amount
    recent: uint256 = (word >> 128) & _MASK96
    recent_epoch: uint256 = word >> 224
    older_flag: uint256 = word & _OLDER
    epoch: uint256 = self._current_epoch()
    final: uint256 = self.next_epoch
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
                older += prev & _MASK128
        self._stake_older[msg.sender] = older | (recent_epoch << 128)
        older_flag = _OLDER
        recent = amount
    recent = min(recent, stake)
    assert stake <= _MASK127 and recent <= _MASK96, "poa: amount too large"
    self._stake[msg.sender] = stake | older_flag | (recent << 128) | (epoch << 224)
    self.total_staked += amount
    self._pull(stake_token, amount)
    thaw: uint256 = self._thaw[msg.sender]
    log IAccessStaking.StakeChanged(node=msg.sender, stake=stake, unbonding=thaw & _MASK128, thaw_end=thaw >> 128)


@external
def request_unbond(amount: uint256):
    """
    @dev Moves `amount` of the caller's bonded stake into its thawing bucket.
    @notice The whole bucket's thaw restarts: it can be withdrawn `thaw_period` seconds from
            now, once every epoch that ended by then is finalized. Thawing stake earns nothing
            and stays slashable. The stake left must be 0 or at least `min_stake`.
    @param amount The amount (non-zero, at most the bonded stake).
    """
    self._require_node(msg.sender)
    assert amount > 0, "poa: zero amount"
    word: uint256 = self._stake[msg.sender]
    stake: uint256 = word & _MASK127
    assert amount <= stake, "poa: insufficient stake"
    stake -= amount
    assert stake == 0 or stake >= min_stake, "poa: below min stake"
    recent: uint256 = min((word >> 128) & _MASK96, stake)
    self._stake[msg.sender] = stake | (word & _OLDER) | (recent << 128) | ((word >> 224) << 224)
    thaw: uint256 = self._thaw[msg.sender]
    thawing: uint256 = (thaw & _MASK128) + amount
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
    amount: uint256 = thaw & _MASK128
    thaw_end: uint256 = thaw >> 128
    assert amount > 0, "poa: nothing to withdraw"
    assert block.timestamp >= thaw_end, "poa: still thawing"
    assert self.next_epoch >= self._epoch_at(thaw_end), "poa: epochs not finalized"
    self._thaw[msg.sender] = thaw_end << 128
    self.total_thawing -= amount
    self._push(stake_token, msg.sender, amount)
    log IAccessStaking.Withdrawn(node=msg.sender, amount=amount)
    log IAccessStaking.StakeChanged(
        node=msg.sender, stake=self._stake[msg.sender] & _MASK127, unbonding=0, thaw_end=thaw_end
    )
    return amount


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
    slot: uint256 = self._slot_of[msg.sender]
    assert slot != 0, "poa: not in committee"
    slot -= 1
    seat: uint256 = self._seat[slot]
    assert (seat >> 160) & _MASK48 <= epoch and epoch < seat >> 208, "poa: not in committee"
    start: uint256 = genesis + epoch * epoch_length
    assert block.timestamp >= start, "poa: epoch not started"
    assert block.timestamp < start + epoch_length + report_window, "poa: reporting closed"
    bit: uint256 = 1 << (8 + slot)
    for r: IAccessStaking.Report in reports:
        assert r.node != msg.sender, "poa: self report"
        self._require_node(r.node)
        assert r.probes > 0, "poa: no probes"
        assert r.successes <= r.probes, "poa: successes exceed probes"
        head: uint256 = self._reports[epoch][r.node][0]
        assert head & bit == 0, "poa: duplicate report"
        packed: uint256 = (
            convert(r.probes, uint256)
            | (convert(r.successes, uint256) << 32)
            | (convert(r.latency_ms, uint256) << 64)
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
    assert epoch == self.next_epoch, "poa: not next epoch"
    assert block.timestamp >= genesis + (epoch + 1) * epoch_length + report_window, "poa: reporting open"
    assert max_nodes > 0 and max_nodes <= MAX_PAGE, "poa: bad page size"
    if self.epoch_reports[epoch] == 0:
        self._close_epoch(epoch, 0)
        return True

    cursor: uint256 = self.finalize_cursor
    count: uint256 = self.node_count
    start_count: uint256 = count
    meter: address = self.usage_meter
    committee: uint256 = self._size_at(epoch)
    weight_sum: uint256 = 0
    slashed_sum: uint256 = 0
    for i: uint256 in range(max_nodes, bound=MAX_PAGE):
        if cursor >= count:
            break
        addr: address = self._nodes[cursor]
        w: uint256 = 0
        s: uint256 = 0
        ejected: bool = False
        w, s, ejected = self._score_node(epoch, addr, meter, committee)
        weight_sum += w
        slashed_sum += s
        if ejected:
            # Swap-remove: the last (unscored) node moves into this position.
            count -= 1
            last: address = self._nodes[count]
            self._nodes[cursor] = last
            self._index[last] = cursor
            self._nodes[count] = empty(address)
            self._index[addr] = 0
        else:
            cursor += 1
    if count != start_count:
        self.node_count = count
    if weight_sum != 0:
        self.epoch_weight[epoch] += weight_sum
    if slashed_sum != 0:
        if _slash_to_pool:
            self.reward_pool[epoch + 1] += slashed_sum
            self.rewards_undistributed += slashed_sum
        else:
            self.burnt_stake += slashed_sum
        log IAccessStaking.StakeSlashed(epoch=epoch, amount=slashed_sum, to_reward_pool=_slash_to_pool)
    if cursor >= count:
        self.finalize_cursor = 0
        self._close_epoch(epoch, self.epoch_weight[epoch])
        return True
    self.finalize_cursor = cursor
    return False


# ---------------------------------------------------------------------------------------------
# Rewards
# ---------------------------------------------------------------------------------------------


@external
def fund_rewards(amount: uint256):
    """
    @dev Pulls `amount` of `reward_token` from the caller into the current epoch's pool
         (anyone; the UsageMeter's protocol fees arrive here). Works while paused.
    @param amount The amount (non-zero).
    """
    assert amount > 0, "poa: zero amount"
    epoch: uint256 = self._current_epoch()
    self.reward_pool[epoch] += amount
    self.rewards_undistributed += amount
    self._pull(reward_token, amount)
    log IAccessStaking.RewardsFunded(epoch=epoch, funder=msg.sender, amount=amount)


@external
def claim_rewards(node: address) -> uint256:
    """
    @dev Pays `node` every reward it earned in finalized epochs (anyone may trigger it; the
         tokens always go to the node). O(1). Works while paused.
    @param node The node.
    @return uint256 The amount paid (0 when nothing is due).
    """
    meta: uint256 = self._meta[node]
    bal: uint256 = self._bal[node]
    settled: uint256 = 0
    meta, bal, settled = self._settle(meta, bal, self.next_epoch)
    amount: uint256 = bal & _MASK128
    if settled != 0:
        self._meta[node] = meta
        self.rewards_reserved -= settled
        self.rewards_credited += settled
    if amount == 0:
        if settled != 0:
            self._bal[node] = bal
        return 0
    self._bal[node] = bal & ~_MASK128
    self.rewards_credited -= amount
    self._push(reward_token, node, amount)
    log IAccessStaking.RewardsClaimed(node=node, amount=amount)
    return amount


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
        staticcall IUsageMeter(usage_meter_).epoch_length() == epoch_length
        and staticcall IUsageMeter(usage_meter_).genesis() == genesis
    ), "poa: meter epoch mismatch"
    self.usage_meter = usage_meter_
    log IAccessStaking.Wired(usage_meter=usage_meter_)


@external
def add_reporter(reporter: address):
    """
    @dev Adds `reporter` to the committee from the next epoch on (admin).
    @notice Takes the lowest free slot: one never used, or one whose previous member's last
            epoch is past reporting. A removed member can be added again once its old seat is
            free ("poa: reporter still reporting" until then).
    @param reporter The new member (not already sitting or about to sit).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert reporter != empty(address), "poa: zero reporter"
    c: uint256 = self._current_epoch()
    held: uint256 = self._slot_of[reporter]
    if held != 0:
        # A former member comes back only once its old seat is free (its old slot may be reused).
        seat: uint256 = self._seat[held - 1]
        assert seat >> 208 != _OPEN, "poa: already a reporter"
        assert self._seat_free(seat), "poa: reporter still reporting"
        self._slot_of[reporter] = 0
    slot: uint256 = MAX_COMMITTEE
    for i: uint256 in range(MAX_COMMITTEE):
        seat: uint256 = self._seat[i]
        if seat == 0 or self._seat_free(seat):
            slot = i
            if seat != 0:
                old: address = convert(convert(seat & _MASK160, uint160), address)
                if self._slot_of[old] == i + 1:
                    self._slot_of[old] = 0
            break
    assert slot < MAX_COMMITTEE, "poa: committee full"
    self._seat[slot] = convert(convert(reporter, uint160), uint256) | ((c + 1) << 160) | (_OPEN << 208)
    self._slot_of[reporter] = slot + 1
    self._resize(c + 1, True)
    log IAccessStaking.ReporterAdded(reporter=reporter, slot=slot, from_epoch=c + 1)


@external
def remove_reporter(reporter: address):
    """
    @dev Removes `reporter` from the committee from the next epoch on (admin). It still reports
         for the epochs it sat in until their report windows close; its slot is then free.
    @param reporter A member sitting (or about to sit) in the next epoch.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    held: uint256 = self._slot_of[reporter]
    assert held != 0, "poa: not a reporter"
    seat: uint256 = self._seat[held - 1]
    assert seat >> 208 == _OPEN, "poa: not a reporter"
    c: uint256 = self._current_epoch()
    if (seat >> 160) & _MASK48 >= c + 1:
        # Added this epoch, never sat: the slot is free at once.
        self._seat[held - 1] = 0
        self._slot_of[reporter] = 0
    else:
        self._seat[held - 1] = (seat & ((1 << 208) - 1)) | ((c + 1) << 208)
    self._resize(c + 1, False)
    log IAccessStaking.ReporterRemoved(reporter=reporter, slot=held - 1, until_epoch=c + 1)


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
def current_epoch() -> uint256:
    """
    @dev The epoch containing the current block.
    @return uint256 (now - genesis) // epoch_length.
    """
    return self._current_epoch()


@external
@view
def tee_signer(node: address) -> address:
    """
    @dev The node's registered TEE signer (zero if none).
    @param node The node.
    @return address The signer.
    """
    return convert(convert(self._profile[node] & _MASK160, uint160), address)


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
def committee_size(epoch: uint256) -> uint256:
    """
    @dev The number of reporters sitting in `epoch` (a node's epoch counts with more than half).
    @param epoch The epoch.
    @return uint256 The committee size.
    """
    return self._size_at(epoch)


@external
@view
def reporter_seat(slot: uint256) -> (address, uint256, uint256):
    """
    @dev The seat in committee slot `slot` < MAX_COMMITTEE (zero address: free).
    @param slot The slot.
    @return address The member.
    @return uint256 The first epoch it sits in.
    @return uint256 The first epoch it no longer sits in (2**48 - 1: open-ended).
    """
    seat: uint256 = self._seat[slot]
    return convert(convert(seat & _MASK160, uint160), address), (seat >> 160) & _MASK48, seat >> 208


@external
@view
def is_reporter(reporter: address, epoch: uint256) -> bool:
    """
    @dev True when `reporter` sits in `epoch`'s committee (may report for it).
    @param reporter The address.
    @param epoch The epoch.
    @return bool Whether it sits.
    """
    held: uint256 = self._slot_of[reporter]
    if held == 0:
        return False
    seat: uint256 = self._seat[held - 1]
    return (seat >> 160) & _MASK48 <= epoch and epoch < seat >> 208


@external
@view
def node(addr: address) -> IAccessStaking.Node:
    """
    @dev A node's state; a jail that has run out reads as ACTIVE.
    @param addr The node.
    @return Node (stake, unbonding, services, status, reliability, strikes, jailed_until).
    """
    meta: uint256 = self._meta[addr]
    return IAccessStaking.Node(
        stake=self._stake[addr] & _MASK127,
        unbonding=self._thaw[addr] & _MASK128,
        services=self._profile[addr] >> 224,
        status=self._status_at(meta, self._current_epoch()),
        reliability=meta & _MASK64,
        strikes=(meta >> 64) & 255,
        jailed_until=(meta >> 88) & _MASK32,
    )


@external
@view
def region(node: address) -> bytes8:
    """
    @dev The node's region code.
    @param node The node.
    @return bytes8 The region.
    """
    return convert(convert((self._profile[node] >> 160) & _MASK64, uint64), bytes8)


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
    return (self._meta[node] >> 72) & 255, self._thaw[node] >> 128, (word >> 128) & _MASK96, word >> 224


@external
@view
def node_at(index: uint256) -> address:
    """
    @dev The registered (non-ejected) node at `index` < `node_count`.
    @param index The position.
    @return address The node.
    """
    return self._nodes[index]


@external
@view
def claimable(node: address) -> uint256:
    """
    @dev Rewards `claim_rewards(node)` would pay now.
    @param node The node.
    @return uint256 The amount.
    """
    meta: uint256 = self._meta[node]
    bal: uint256 = self._bal[node]
    settled: uint256 = 0
    meta, bal, settled = self._settle(meta, bal, self.next_epoch)
    return bal & _MASK128


@external
@view
def reports(epoch: uint256, node: address) -> DynArray[IAccessStaking.Sample, MAX_COMMITTEE]:
    """
    @dev The reports stored for (epoch, node), in arrival order.
    @param epoch The epoch.
    @param node The node.
    @return DynArray The samples.
    """
    out: DynArray[IAccessStaking.Sample, MAX_COMMITTEE] = []
    slots: uint256[8] = self._reports[epoch][node]
    n: uint256 = slots[0] & 255
    for k: uint256 in range(1, MAX_COMMITTEE + 1):
        if k > n:
            break
        lane: uint256 = (slots[k // 2] >> (128 * (k % 2))) & _MASK128
        out.append(IAccessStaking.Sample(
            probes=convert(lane & _MASK32, uint32),
            successes=convert((lane >> 32) & _MASK32, uint32),
            latency_ms=convert((lane >> 64) & _MASK32, uint32),
        ))
    return out


@external
@view
def params() -> IAccessStaking.Params:
    """
    @dev The scoring and slashing constants.
    @return Params The constructor parameters.
    """
    return IAccessStaking.Params(
        min_stake=min_stake,
        report_window=report_window,
        thaw_period=thaw_period,
        quorum=quorum,
        latency_max_ms=latency_max_ms,
        weight_availability_bps=w_availability,
        weight_latency_bps=w_latency,
        weight_usage_bps=w_usage,
        alpha_bps=alpha_bps,
        initial_reliability=initial_reliability,
        quality_floor=quality_floor,
        strikes_to_jail=strikes_to_jail,
        jail_epochs=jail_epochs,
        max_jails=max_jails,
        slash_bps=slash_bps,
        slash_cap_bps=slash_cap_bps,
    )


@external
@view
def score_reports(
    samples: DynArray[IAccessStaking.Sample, MAX_COMMITTEE], mu: uint256, failed_mu: uint256, prev_reliability: uint256
) -> (uint256, uint256):
    """
    @dev The epoch quality and next reliability for up to MAX_COMMITTEE reports (medians, as in
         finalize).
    @param samples The reports (at least one).
    @param mu Paid MU settled by the node in the epoch (0: no usage term).
    @param failed_mu MU of failed paid calls (capped at mu).
    @param prev_reliability The reliability before the epoch (<= WAD).
    @return uint256 The quality q, WAD.
    @return uint256 The new reliability r', WAD.
    """
    assert len(samples) > 0, "poa: no probes"
    assert prev_reliability <= WAD, "poa: bad fraction"
    avail: DynArray[uint256, MAX_COMMITTEE] = []
    lat: DynArray[uint256, MAX_COMMITTEE] = []
    for smp: IAccessStaking.Sample in samples:
        assert smp.probes > 0, "poa: no probes"
        assert smp.successes <= smp.probes, "poa: successes exceed probes"
        avail.append(convert(smp.successes, uint256) * WAD // convert(smp.probes, uint256))
        lat.append(convert(smp.latency_ms, uint256))
    return self._quality(self._median(avail), self._median(lat), mu, failed_mu, prev_reliability)


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


@internal
@view
def _current_epoch() -> uint256:
    """
    @dev The epoch containing the current block.
    @return uint256 The epoch.
    """
    return (block.timestamp - genesis) // epoch_length


@internal
@view
def _epoch_at(ts: uint256) -> uint256:
    """
    @dev The epoch containing timestamp `ts` (>= genesis).
    @param ts A timestamp.
    @return uint256 The epoch.
    """
    return (ts - genesis) // epoch_length


@internal
@view
def _serves(node: address, at: uint256) -> bool:
    """
    @dev See `serves`.
    @param node The node.
    @param at A timestamp.
    @return bool Whether the node was serving at `at`.
    """
    meta: uint256 = self._meta[node]
    status: uint8 = self._status_of(meta)
    if status == STATUS_NONE or status == STATUS_EJECTED:
        return False
    if at < (meta >> 192) & _MASK40:
        return False
    jailed_at: uint256 = (meta >> 152) & _MASK40
    if jailed_at != 0 and at >= jailed_at and at < genesis + ((meta >> 88) & _MASK32) * epoch_length:
        return False
    return self._stake[node] & _MASK127 >= min_stake


@internal
@view
def _seat_free(seat: uint256) -> bool:
    """
    @dev True when a closed seat's slot may be reused: its member never sat, or the report
         window of the last epoch it sat in has closed.
    @param seat The seat word.
    @return bool Whether the slot is free.
    """
    until: uint256 = seat >> 208
    if until == _OPEN:
        return False
    if (seat >> 160) & _MASK48 >= until:
        return True
    return block.timestamp >= genesis + until * epoch_length + report_window


@internal
def _resize(from_epoch: uint256, grow: bool):
    """
    @dev Records a committee size change effective from `from_epoch` (the next epoch).
    @param from_epoch The first epoch of the new size.
    @param grow True: one more member; False: one fewer.
    """
    n: uint256 = self._size_cp_count
    size: uint256 = 0
    last: uint256 = 0
    if n != 0:
        last = self._size_cp[n - 1]
        size = last & 255
    if grow:
        size += 1
    else:
        size -= 1
    if n != 0 and last >> 8 == from_epoch:
        self._size_cp[n - 1] = (from_epoch << 8) | size
    else:
        self._size_cp[n] = (from_epoch << 8) | size
        self._size_cp_count = n + 1


@internal
@view
def _size_at(epoch: uint256) -> uint256:
    """
    @dev The committee size of `epoch`: the last checkpoint at or before it (binary search).
    @param epoch The epoch.
    @return uint256 The size.
    """
    lo: uint256 = 0
    hi: uint256 = self._size_cp_count
    for i: uint256 in range(64):
        if lo >= hi:
            break
        mid: uint256 = (lo + hi) // 2
        if self._size_cp[mid] >> 8 <= epoch:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return 0
    return self._size_cp[lo - 1] & 255


@internal
@view
def _require_node(addr: address):
    """
    @dev Reverts unless `addr` is a registered node that is not ejected.
    @param addr The address.
    """
    status: uint8 = self._status_of(self._meta[addr])
    assert status == STATUS_ACTIVE or status == STATUS_JAILED, "poa: unknown node"


@internal
def _pull(token: address, amount: uint256):
    """
    @dev Pulls `amount` of `token` from the caller (allowance needed).
    @param token The token.
    @param amount The amount.
    """
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "poa: transfer failed"


@internal
def _push(token: address, to: address, amount: uint256):
    """
    @dev Sends `amount` of `token` to `to`.
    @param token The token.
    @param to The receiver.
    @param amount The amount.
    """
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "poa: transfer failed"


@internal
@pure
def _status_of(meta: uint256) -> uint8:
    """
    @dev The stored status.
    @param meta The node's hot word.
    @return uint8 The status.
    """
    return convert((meta >> 80) & 255, uint8)


@internal
@pure
def _status_at(meta: uint256, epoch: uint256) -> uint8:
    """
    @dev The status in `epoch`: a jail ends at `jailed_until`.
    @param meta The node's hot word.
    @param epoch The epoch.
    @return uint8 The status.
    """
    status: uint8 = convert((meta >> 80) & 255, uint8)
    if status == STATUS_JAILED and epoch >= (meta >> 88) & _MASK32:
        return STATUS_ACTIVE
    return status


@internal
@pure
def _check_profile(endpoint: String[256], services: uint256, tee_signer: address):
    """
    @dev Reverts on an invalid node profile.
    @param endpoint The endpoint (non-empty).
    @param services Service bits (non-zero, within SERVICE_ALL).
    @param tee_signer Required with the TEE bit.
    """
    assert len(endpoint) > 0, "poa: empty endpoint"
    assert services != 0 and services & ~SERVICE_ALL == 0, "poa: bad services"
    assert services & SERVICE_TEE == 0 or tee_signer != empty(address), "poa: tee signer required"


@internal
@pure
def _pack_profile(services: uint256, region: bytes8, tee_signer: address) -> uint256:
    """
    @dev Packs the profile word.
    @param services Service bits.
    @param region Region code.
    @param tee_signer TEE signer.
    @return uint256 tee_signer 160 | region 64 @160 | services 32 @224.
    """
    return (
        convert(convert(tee_signer, uint160), uint256)
        | (convert(convert(region, uint64), uint256) << 160)
        | (services << 224)
    )


@internal
@view
def _quality(
    availability: uint256, latency_ms: uint256, mu: uint256, failed_mu: uint256, prev: uint256
) -> (uint256, uint256):
    """
    @dev The header formula from the medians.
    @param availability Median availability, WAD.
    @param latency_ms Median latency in ms.
    @param mu Paid MU (0: no usage term).
    @param failed_mu MU of failed paid calls (capped at mu).
    @param prev The previous reliability, WAD.
    @return uint256 The quality, WAD.
    @return uint256 The new reliability, WAD.
    """
    lat_score: uint256 = 0
    t: uint256 = latency_ms * WAD // latency_max_ms
    if t < WAD:
        lat_score = WAD - t
    q: uint256 = 0
    if mu > 0:
        m: uint256 = mu
        f: uint256 = min(failed_mu, mu)
        if m >= 2**128:
            # Keep m * WAD in range (no realistic meter gets here; the Python mirror does the same).
            m = m >> 128
            f = f >> 128
        usage: uint256 = (m - f) * WAD // m
        # wA + wL + wU == BPS (constructor check)
        q = (w_availability * availability + w_latency * lat_score + w_usage * usage) // BPS
    else:
        q = (w_availability * availability + w_latency * lat_score) // (w_availability + w_latency)
    return q, (alpha_bps * q + (BPS - alpha_bps) * prev) // BPS


@internal
@pure
def _median(values: DynArray[uint256, MAX_COMMITTEE]) -> uint256:
    """
    @dev Median by insertion sort (n <= MAX_COMMITTEE); an even count gives the floor mean of the
         middle two.
    @param values The values (at least one).
    @return uint256 The median.
    """
    v: DynArray[uint256, MAX_COMMITTEE] = values
    n: uint256 = len(v)
    for i: uint256 in range(1, MAX_COMMITTEE):
        if i >= n:
            break
        x: uint256 = v[i]
        j: uint256 = i
        for k: uint256 in range(MAX_COMMITTEE):
            if j == 0 or v[j - 1] <= x:
                break
            v[j] = v[j - 1]
            j -= 1
        v[j] = x
    if n % 2 == 1:
        return v[n // 2]
    return (v[n // 2 - 1] + v[n // 2]) // 2


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
    pending: uint256 = (meta >> 120) & _MASK32
    if pending == 0 or pending - 1 >= next_epoch:
        return meta, bal, 0
    weight: uint256 = (bal >> 128) & _MASK127
    amount: uint256 = weight * self.reward_per_weight[pending - 1] // RPW_SCALE
    return meta & ~(_MASK32 << 120), (bal & ~_MASK128) + (bal & _MASK128) + amount, amount


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

    avail: DynArray[uint256, MAX_COMMITTEE] = []
    lat: DynArray[uint256, MAX_COMMITTEE] = []
    slot: uint256 = head
    for k: uint256 in range(1, MAX_COMMITTEE + 1):
        if k > n:
            break
        if k % 2 == 0:
            slot = self._reports[epoch][addr][k // 2]
        lane: uint256 = (slot >> (128 * (k % 2))) & _MASK128
        avail.append(((lane >> 32) & _MASK32) * WAD // (lane & _MASK32))
        lat.append((lane >> 64) & _MASK32)

    mu: uint256 = 0
    failed_mu: uint256 = 0
    if meter != empty(address):
        u: IUsageMeter.NodeUsage = staticcall IUsageMeter(meter).node_usage(addr, epoch)
        mu = u.mu
        failed_mu = u.failed_mu

    meta: uint256 = self._meta[addr]
    q: uint256 = 0
    r: uint256 = 0
    q, r = self._quality(self._median(avail), self._median(lat), mu, failed_mu, meta & _MASK64)

    bal: uint256 = self._bal[addr]
    settled: uint256 = 0
    meta, bal, settled = self._settle(meta, bal, epoch)
    if settled != 0:
        self.rewards_reserved -= settled
        self.rewards_credited += settled

    strikes: uint256 = (meta >> 64) & 255
    jails: uint256 = (meta >> 72) & 255
    status: uint8 = self._status_of(meta)
    jailed_until: uint256 = (meta >> 88) & _MASK32
    jailed_at: uint256 = (meta >> 152) & _MASK40
    weight: uint256 = 0
    slashed: uint256 = 0
    ejected: bool = False
    if status == STATUS_JAILED and epoch >= jailed_until:
        status = STATUS_ACTIVE
    if status == STATUS_ACTIVE:
        if q < quality_floor:
            strikes += 1
        else:
            strikes = 0
        if strikes >= strikes_to_jail:
            strikes = 0
            jails += 1
            jailed_until = epoch + 1 + jail_epochs
            jailed_at = block.timestamp
            slashed = self._slash(addr, epoch)
            log IAccessStaking.NodeJailed(node=addr, until=jailed_until, slashed=slashed)
            if jails >= max_jails:
                status = STATUS_EJECTED
                ejected = True
                self._eject(addr)
            else:
                status = STATUS_JAILED
        else:
            # Stake added in `epoch` or later does not earn in `epoch`.
            word: uint256 = self._stake[addr]
            stake: uint256 = word & _MASK127
            excluded: uint256 = 0
            if word >> 224 >= epoch:
                excluded = (word >> 128) & _MASK96
            if word & _OLDER != 0:
                older: uint256 = self._stake_older[addr]
                if older >> 128 >= epoch:
                    excluded += older & _MASK128
            stake -= min(excluded, stake)
            weight = stake * r // WAD * r // WAD

    pending: uint256 = 0
    if weight != 0:
        pending = epoch + 1
    self._meta[addr] = (
        r
        | (strikes << 64)
        | (jails << 72)
        | (convert(status, uint256) << 80)
        | (jailed_until << 88)
        | (pending << 120)
        | (jailed_at << 152)
        | ((meta >> 192) << 192)
    )
    self._bal[addr] = (bal & _MASK128) | (weight << 128) | _BAL_SET
    log IAccessStaking.EpochScored(epoch=epoch, node=addr, quality=q, reliability=r, weight=weight, strikes=strikes)
    return weight, slashed, ejected


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
        self.slash_available = (self.total_staked + self.total_thawing) * slash_cap_bps // BPS
    word: uint256 = self._stake[addr]
    thaw: uint256 = self._thaw[addr]
    stake: uint256 = word & _MASK127
    thawing: uint256 = thaw & _MASK128
    available: uint256 = self.slash_available
    amount: uint256 = min((stake + thawing) * slash_bps // BPS, available)
    if amount == 0:
        return 0
    self.slash_available = available - amount
    from_stake: uint256 = min(amount, stake)
    from_thaw: uint256 = amount - from_stake
    stake -= from_stake
    thawing -= from_thaw
    recent: uint256 = min((word >> 128) & _MASK96, stake)
    self._stake[addr] = stake | (word & _OLDER) | (recent << 128) | ((word >> 224) << 224)
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
    stake: uint256 = word & _MASK127
    thaw: uint256 = self._thaw[addr]
    thawing: uint256 = (thaw & _MASK128) + stake
    thaw_end: uint256 = max(thaw >> 128, block.timestamp + thaw_period)
    self._stake[addr] = 0
    self._thaw[addr] = thawing | (thaw_end << 128)
    self.total_staked -= stake
    self.total_thawing += stake
    log IAccessStaking.NodeEjected(node=addr, unbonding=thawing, thaw_end=thaw_end)
    log IAccessStaking.StakeChanged(node=addr, stake=0, unbonding=thawing, thaw_end=thaw_end)


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
    self.next_epoch = epoch + 1
    log IAccessStaking.EpochFinalized(
        epoch=epoch, pool=pool, total_weight=total_weight, reward_per_weight=rpw, carried=carried
    )
