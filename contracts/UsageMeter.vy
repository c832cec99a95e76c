# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title UsageMeter: consumer escrow and cumulative MU vouchers
@custom:contract-name UsageMeter
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Consumers pre-fund an escrow per token. For each (credential, node) channel they sign
        EIP-712 `Voucher`s carrying CUMULATIVE counters (MU, calls, failures, latency). A node
        (or anyone relaying for it) submits the latest voucher; the meter charges only the
        delta over what it already settled, so a replay or an older voucher pays nothing and
        one signature settles any number of calls.

        Charge of one voucher: delta_mu * (terms.price_per_mu + node_price_per_mu), nothing
        hidden. `protocol_fee_bps` of each part feeds the Proof-of-Access reward pool; the rest
        of the license part is credited to the capsule in the RoyaltyRouter (one token
        transfer per token per batch), the rest of the node part to the node's balance.

        Each voucher is applied whole or rejected whole with `VoucherRejected(reason)` and the
        batch goes on; a one-voucher call reverts with the reason string instead.

        Example (node side, Python):
            meter.ingest([voucher_tuple], [signature], sender=node)
@custom:security Trusts the LicenseManager (`consume` / `unconsume`: validity, quota, rate,
        scope, revocation), the RoyaltyRouter (`credit` after the transfer), the IdentityRegistry
        (`validDelegate` for `sigAuth` hot keys) and AccessStaking (`tee_signer`, `fund_rewards`),
        all fixed or set by the admin. Signatures: EOA path in-line with s <= n/2 and v in
        {27, 28} (no reverts inside a batch), then ERC-1056 `sigAuth` delegates, then ERC-1271
        for contract holders via ERC-1271 with capped gas. Replays are impossible by
        construction: a voucher's effect is the delta over stored cumulative counters, which
        never decrease. Escrow withdrawals thaw for `withdrawal_thaw`, longer than the
        settlement window, so consumers cannot run away from vouchers they signed.
@custom:kill Pausing stops `deposit`, `ingest` and `ingest_attested`; it never stops
        `request_withdrawal`, `withdraw`, `claim_node` or `sweep_fees`.
"""

from ethereum.ercs import IERC20

from interfaces import ILicenseManager
from interfaces import IRoyaltyRouter
from interfaces import IAccessStaking
from interfaces import IUsageMeter

implements: IUsageMeter

from snekmate.auth import access_control
initializes: access_control

from snekmate.utils import pausable
initializes: pausable

from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator

from .modules import scopes


exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    access_control.supportsInterface,
    pausable.paused,
    eip712_domain_separator.eip712Domain,
)


# @dev The ERC-1056 registry, as far as the meter reads it.
interface IDIDRegistry:
    def validDelegate(identity: address, delegateType: bytes32, delegate: address) -> bool: view


# @dev Per-batch accumulator of revenue for one (capsule, token).
struct CapsuleAgg:
    capsule_id: uint256
    token: address
    amount: uint256


# @dev Per-batch accumulator of one node's earnings, fees and usage in one token.
struct NodeAgg:
    node: address
    token: address
    amount: uint256
    fee: uint256
    calls: uint256
    failures: uint256
    latency_ms: uint256
    mu: uint256


# @dev Role that may pause ingestion and deposits.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev EIP-712 type hash of `Voucher`.
VOUCHER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Voucher(uint256 credential_id,address node,uint256 purpose,uint256 cumulative_mu,uint64 cumulative_calls,uint64 cumulative_failures,uint64 cumulative_latency_ms,uint256 node_price_per_mu,uint64 deadline)"
)


# @dev ERC-1056 delegate type allowed to sign vouchers for a holder ("sigAuth", right-padded).
SIG_AUTH: public(constant(bytes32)) = 0x7369674175746800000000000000000000000000000000000000000000000000


# @dev Gas forwarded to a holder contract's ERC-1271 `isValidSignature`: enough for a multisig
#      or smart-account check, small enough that a hostile wallet burns a bounded amount per
#      voucher instead of the whole batch.
ERC1271_GAS: public(constant(uint256)) = 50_000


# @dev Largest batch.
MAX_BATCH: public(constant(uint256)) = 64


# @dev Upper bound of the protocol fee (10%).
MAX_FEE_BPS: public(constant(uint256)) = 1_000


# @dev Basis points in a whole.
BPS: constant(uint256) = 10_000


# @dev secp256k1 n / 2: signatures with a larger s are malleated copies and rejected.
_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


# @dev Reject reasons (codexfield.constants.Reject).
R_BAD_SIGNATURE: constant(uint8) = 1
R_DEADLINE_PASSED: constant(uint8) = 2
R_NOTHING_NEW: constant(uint8) = 3
R_ESCROW_SHORT: constant(uint8) = 10
R_TEE_SIGNATURE: constant(uint8) = 11
R_COUNTER_DECREASED: constant(uint8) = 12
R_BAD_COUNTERS: constant(uint8) = 13


_MASK48: constant(uint256) = 2**48 - 1
_MASK64: constant(uint256) = 2**64 - 1


# @dev The LicenseManager that prices and authorises credentials.
LICENSE_MANAGER: public(immutable(address))


# @dev The RoyaltyRouter that receives the license part of every charge.
ROUTER: public(immutable(address))


# @dev The ERC-1056 IdentityRegistry consulted for `sigAuth` delegates (zero: none).
IDENTITY: public(immutable(address))


# @dev Epoch length in seconds (shared with AccessStaking).
epoch_length: public(immutable(uint256))


# @dev Start of epoch 0 (shared with AccessStaking).
genesis: public(immutable(uint256))


# @dev Seconds a requested escrow withdrawal thaws before it can leave.
withdrawal_thaw: public(immutable(uint256))


# @dev AccessStaking: TEE signers and the reward pool the protocol fee feeds (zero until wired).
staking: public(address)


# @dev Where protocol fees in tokens other than the staking reward token go.
treasury: public(address)


# @dev Protocol fee in basis points of each charge.
protocol_fee_bps: public(uint256)


# @dev Escrow: consumer => token => balance.
escrow: public(HashMap[address, HashMap[address, uint256]])


# @dev Pending withdrawal: consumer => token => request.
withdrawals: public(HashMap[address, HashMap[address, IUsageMeter.Withdrawal]])


# @dev Settled cumulative counters per channel, packed:
#      mu 96 | calls 64 | failures 48 | latency_ms 48 (from the high bits down).
_channel: HashMap[uint256, HashMap[address, uint256]]


# @dev Node earnings: node => token => balance.
node_balance: public(HashMap[address, HashMap[address, uint256]])


# @dev Protocol fees not yet swept: token => amount.
fee_balance: public(HashMap[address, uint256])


# @dev Per node and epoch, one slot (AccessStaking reads it once per node when it finalizes):
#      calls 64 | failures 64 | latency_ms 64 | mu 64, high to low, each saturating at 2**64 - 1.
_usage: HashMap[address, HashMap[uint256, uint256]]


# @dev Emitted per applied voucher; the deltas rebuild `settled` and `node_usage` from events alone.
event UsageRecorded:
    credential_id: indexed(uint256)
    capsule_id: indexed(uint256)
    node: indexed(address)
    consumer: address
    delta_mu: uint256
    delta_calls: uint64
    delta_failures: uint64
    delta_latency_ms: uint64
    license_amount: uint256
    node_amount: uint256
    protocol_fee: uint256


# @dev Emitted per rejected voucher of a batch (reason: codexfield.constants.Reject).
event VoucherRejected:
    credential_id: indexed(uint256)
    node: indexed(address)
    reason: uint8


# @dev Emitted when escrow is funded.
event Deposited:
    beneficiary: indexed(address)
    token: indexed(address)
    amount: uint256
    payer: address


# @dev Emitted when a consumer starts (or replaces, or with 0 cancels) a withdrawal.
event WithdrawalRequested:
    consumer: indexed(address)
    token: indexed(address)
    amount: uint256
    ready_at: uint256


# @dev Emitted when thawed escrow leaves.
event Withdrawn:
    consumer: indexed(address)
    token: indexed(address)
    amount: uint256


# @dev Emitted when a node withdraws its earnings.
event NodeClaimed:
    node: indexed(address)
    token: indexed(address)
    to: address
    amount: uint256


# @dev Emitted when protocol fees leave to the reward pool or the treasury.
event FeesSwept:
    token: indexed(address)
    amount: uint256
    to: address


# @dev Emitted when the admin changes a setting.
event ConfigChanged:
    staking: address
    treasury: address
    protocol_fee_bps: uint256


@deploy
def __init__(
    license_manager_: address,
    router_: address,
    identity_: address,
    admin_: address,
    epoch_length_: uint256,
    genesis_: uint256,
    withdrawal_thaw_: uint256,
    protocol_fee_bps_: uint256,
):
    """
    @dev Deploys the meter; `admin_` (meant to be a timelock) receives the admin and pauser roles.
    @param license_manager_ The LicenseManager.
    @param router_ The RoyaltyRouter.
    @param identity_ The ERC-1056 IdentityRegistry (zero: no delegate signing).
    @param admin_ The governance address.
    @param epoch_length_ Seconds per usage epoch (equal to AccessStaking's).
    @param genesis_ Start of epoch 0 (equal to AccessStaking's).
    @param withdrawal_thaw_ Thawing period of escrow withdrawals (longer than the settlement window).
    @param protocol_fee_bps_ Protocol fee, at most 1,000 bps.
    """
    access_control.__init__()
    pausable.__init__()
    eip712_domain_separator.__init__("CodexField UsageMeter", "1")
    assert admin_ != empty(address), "meter: zero admin"
    assert epoch_length_ > 0, "meter: zero epoch"
    assert genesis_ <= block.timestamp, "meter: genesis in future"
    assert protocol_fee_bps_ <= MAX_FEE_BPS, "meter: fee too high"
    LICENSE_MANAGER = license_manager_
    ROUTER = router_
    IDENTITY = identity_
    epoch_length = epoch_length_
    genesis = genesis_
    withdrawal_thaw = withdrawal_thaw_
    self.protocol_fee_bps = protocol_fee_bps_
    self.treasury = admin_
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)


# --- escrow --------------------------------------------------------------------------------


@external
def deposit(token: address, amount: uint256, beneficiary: address):
    """
    @dev Funds `beneficiary`'s escrow with `amount` of `token` pulled from the caller.
    @notice Fee-on-transfer tokens are refused (the received amount must equal `amount`).
    @param token The ERC-20 token.
    @param amount The amount (non-zero).
    @param beneficiary The consumer credited.
    """
    pausable._require_not_paused()
    assert amount > 0, "meter: zero amount"
    assert beneficiary != empty(address), "meter: zero beneficiary"
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "meter: transfer failed"
    assert staticcall IERC20(token).balanceOf(self) - before == amount, "meter: fee-on-transfer token"
    self.escrow[beneficiary][token] += amount
    log Deposited(beneficiary=beneficiary, token=token, amount=amount, payer=msg.sender)


@external
def request_withdrawal(token: address, amount: uint256):
    """
    @dev Starts the thaw of `amount` of the caller's escrow (replaces a pending request; 0 cancels).
    @notice Thawing escrow stays chargeable by vouchers until it leaves.
    @param token The token.
    @param amount The amount to withdraw after the thaw.
    """
    assert amount <= self.escrow[msg.sender][token], "meter: amount above escrow"
    ready_at: uint256 = 0
    if amount > 0:
        ready_at = block.timestamp + withdrawal_thaw
    self.withdrawals[msg.sender][token] = IUsageMeter.Withdrawal(amount=amount, ready_at=ready_at)
    log WithdrawalRequested(consumer=msg.sender, token=token, amount=amount, ready_at=ready_at)


@external
def withdraw(token: address) -> uint256:
    """
    @dev Sends the caller's thawed withdrawal (capped by what is left in escrow). Works when paused.
    @param token The token.
    @return uint256 The amount sent.
    """
    w: IUsageMeter.Withdrawal = self.withdrawals[msg.sender][token]
    assert w.amount > 0, "meter: no withdrawal requested"
    assert block.timestamp >= w.ready_at, "meter: still thawing"
    amount: uint256 = min(w.amount, self.escrow[msg.sender][token])
    self.withdrawals[msg.sender][token] = empty(IUsageMeter.Withdrawal)
    self.escrow[msg.sender][token] -= amount
    if amount > 0:
        assert extcall IERC20(token).transfer(msg.sender, amount, default_return_value=True), "meter: transfer failed"
    log Withdrawn(consumer=msg.sender, token=token, amount=amount)
    return amount


# --- vouchers ------------------------------------------------------------------------------


@external
def ingest(vouchers: DynArray[IUsageMeter.Voucher, MAX_BATCH], signatures: DynArray[Bytes[65], MAX_BATCH]) -> uint256:
    """
    @dev Applies a batch of consumer-signed cumulative vouchers.
    @notice Each voucher is applied whole or rejected whole (`VoucherRejected`), and the batch
            goes on; with a single voucher a rejection reverts with its reason. Vouchers whose
            credential's scope has TEE_REQUIRED are rejected here: use `ingest_attested`.
    @param vouchers Up to 64 vouchers.
    @param signatures One 65-byte (r, s, v) signature per voucher, by the credential holder, a
           `sigAuth` delegate of the holder in the IdentityRegistry, or (ERC-1271, capped gas) the holder contract.
    @return uint256 How many vouchers were applied.
    """
    return self._ingest(vouchers, signatures, [])


@external
def ingest_attested(
    vouchers: DynArray[IUsageMeter.Voucher, MAX_BATCH],
    signatures: DynArray[Bytes[65], MAX_BATCH],
    tee_signatures: DynArray[Bytes[65], MAX_BATCH],
) -> uint256:
    """
    @dev As `ingest`, with the node's TEE signer co-signing each voucher's EIP-712 digest
         (required for credentials whose scope has TEE_REQUIRED).
    @param vouchers Up to 64 vouchers.
    @param signatures Consumer-side signatures.
    @param tee_signatures The node's registered TEE signer's signature of the same digest.
    @return uint256 How many vouchers were applied.
    """
    assert len(tee_signatures) == len(vouchers), "meter: length mismatch"
    return self._ingest(vouchers, signatures, tee_signatures)


@external
def claim_node(token: address, to: address) -> uint256:
    """
    @dev Sends the caller's (a node's) earnings in `token` to `to`. Works when paused.
    @param token The token.
    @param to The receiver.
    @return uint256 The amount sent.
    """
    amount: uint256 = self.node_balance[msg.sender][token]
    assert amount > 0, "meter: nothing to claim"
    self.node_balance[msg.sender][token] = 0
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "meter: transfer failed"
    log NodeClaimed(node=msg.sender, token=token, to=to, amount=amount)
    return amount


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
    pool: address = self.staking
    if pool != empty(address) and staticcall IAccessStaking(pool).reward_token() == token:
        assert extcall IERC20(token).approve(pool, amount, default_return_value=True), "meter: approve failed"
        extcall IAccessStaking(pool).fund_rewards(amount)
        log FeesSwept(token=token, amount=amount, to=pool)
    else:
        to: address = self.treasury
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "meter: transfer failed"
        log FeesSwept(token=token, amount=amount, to=to)
    return amount


# --- admin ---------------------------------------------------------------------------------


@external
def configure(staking_: address, treasury_: address, protocol_fee_bps_: uint256):
    """
    @dev Wires AccessStaking and the treasury and sets the protocol fee (admin).
    @param staking_ AccessStaking (its epochs must match the meter's).
    @param treasury_ Receiver of fees in other tokens (non-zero).
    @param protocol_fee_bps_ Protocol fee, at most 1,000 bps.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert treasury_ != empty(address), "meter: zero treasury"
    assert protocol_fee_bps_ <= MAX_FEE_BPS, "meter: fee too high"
    self.staking = staking_
    self.treasury = treasury_
    self.protocol_fee_bps = protocol_fee_bps_
    log ConfigChanged(staking=staking_, treasury=treasury_, protocol_fee_bps=protocol_fee_bps_)


@external
def pause():
    """
    @dev Stops deposits and ingestion (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._pause()


@external
def unpause():
    """
    @dev Resumes deposits and ingestion (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._unpause()


# --- views ---------------------------------------------------------------------------------


@external
@view
def settled(credential_id: uint256, node: address) -> (uint256, uint64, uint64, uint64):
    """
    @dev The cumulative counters settled on a channel.
    @param credential_id The credential.
    @param node The node.
    @return uint256 cumulative_mu
    @return uint64 cumulative_calls
    @return uint64 cumulative_failures
    @return uint64 cumulative_latency_ms
    """
    p: uint256 = self._channel[credential_id][node]
    return p >> 160, convert((p >> 96) & _MASK64, uint64), convert((p >> 48) & _MASK48, uint64), \
        convert(p & _MASK48, uint64)


@external
@view
def node_usage(node: address, epoch: uint256) -> IUsageMeter.NodeUsage:
    """
    @dev Usage settled for `node` during `epoch` (read by AccessStaking).
    @param node The node.
    @param epoch The epoch number.
    @return NodeUsage (calls, failures, latency_ms_sum, mu).
    """
    p: uint256 = self._usage[node][epoch]
    return IUsageMeter.NodeUsage(
        calls=convert(p >> 192, uint64),
        failures=convert((p >> 128) & _MASK64, uint64),
        latency_ms_sum=convert((p >> 64) & _MASK64, uint64),
        mu=p & _MASK64,
        failed_mu=0,  # compile shim (poa helper): the meter helper's branch fills it
    )


@external
@view
def current_epoch() -> uint256:
    """
    @dev The current usage epoch.
    @return uint256 (now - genesis) // epoch_length.
    """
    return (block.timestamp - genesis) // epoch_length


@external
@view
def voucher_digest(v: IUsageMeter.Voucher) -> bytes32:
    """
    @dev The EIP-712 digest a consumer signs for `v` (for SDKs to cross-check).
    @param v The voucher.
    @return bytes32 The digest.
    """
    return self._digest(v)


# --- internals -----------------------------------------------------------------------------


@internal
def _ingest(
    vouchers: DynArray[IUsageMeter.Voucher, MAX_BATCH],
    signatures: DynArray[Bytes[65], MAX_BATCH],
    tee_signatures: DynArray[Bytes[65], MAX_BATCH],
) -> uint256:
    """
    @dev Applies the batch, then moves the aggregated amounts once per token / capsule / node.
    @param vouchers The vouchers.
    @param signatures Their signatures.
    @param tee_signatures TEE co-signatures (empty for `ingest`).
    @return uint256 How many vouchers were applied.
    """
    pausable._require_not_paused()
    n: uint256 = len(vouchers)
    assert n > 0, "meter: empty batch"
    assert len(signatures) == n, "meter: length mismatch"
    caps: DynArray[CapsuleAgg, MAX_BATCH] = []
    nodes: DynArray[NodeAgg, MAX_BATCH] = []
    fee_bps: uint256 = self.protocol_fee_bps
    applied: uint256 = 0

    for i: uint256 in range(n, bound=MAX_BATCH):
        v: IUsageMeter.Voucher = vouchers[i]
        if convert(v.deadline, uint256) < block.timestamp:
            self._rejected(n, v.credential_id, v.node, R_DEADLINE_PASSED)
            continue
        c_calls: uint256 = convert(v.cumulative_calls, uint256)
        c_fail: uint256 = convert(v.cumulative_failures, uint256)
        c_lat: uint256 = convert(v.cumulative_latency_ms, uint256)
        if c_fail > c_calls or v.cumulative_mu >= 2**96 or c_fail > _MASK48 or c_lat > _MASK48:
            self._rejected(n, v.credential_id, v.node, R_BAD_COUNTERS)
            continue
        packed: uint256 = self._channel[v.credential_id][v.node]
        s_mu: uint256 = packed >> 160
        s_calls: uint256 = (packed >> 96) & _MASK64
        s_fail: uint256 = (packed >> 48) & _MASK48
        s_lat: uint256 = packed & _MASK48
        if v.cumulative_mu <= s_mu and c_calls <= s_calls and c_fail <= s_fail and c_lat <= s_lat:
            self._rejected(n, v.credential_id, v.node, R_NOTHING_NEW)
            continue
        if v.cumulative_mu < s_mu or c_calls < s_calls or c_fail < s_fail or c_lat < s_lat:
            self._rejected(n, v.credential_id, v.node, R_COUNTER_DECREASED)
            continue
        d_mu: uint256 = v.cumulative_mu - s_mu

        # Recover first (no state needed), then ONE LicenseManager call that checks validity,
        # quota, rate and scope, applies the MU and returns holder and price. If the voucher
        # then fails here (signature, TEE, escrow), `unconsume` restores the credential exactly.
        digest: bytes32 = self._digest(v)
        signer: address = self._recover(digest, signatures[i])
        chk: ILicenseManager.UsageCheck = extcall ILicenseManager(LICENSE_MANAGER).consume(
            v.credential_id, d_mu, v.purpose, block.timestamp
        )
        if chk.status != 0:
            self._rejected(n, v.credential_id, v.node, chk.status)
            continue
        code: uint8 = 0
        if signer != chk.holder or signer == empty(address):
            if not self._signed_for(chk.holder, signer, digest, signatures[i]):
                code = R_BAD_SIGNATURE
        if code == 0 and chk.scope & scopes.SCOPE_TEE_REQUIRED != 0:
            if not self._tee_signed(v.node, digest, tee_signatures, i):
                code = R_TEE_SIGNATURE
        license_part: uint256 = d_mu * chk.price_per_mu
        node_part: uint256 = d_mu * v.node_price_per_mu
        total: uint256 = license_part + node_part
        bal: uint256 = self.escrow[chk.holder][chk.payment_token]
        if code == 0 and bal < total:
            code = R_ESCROW_SHORT
        if code != 0:
            if d_mu != 0:
                extcall ILicenseManager(LICENSE_MANAGER).unconsume(v.credential_id)
            self._rejected(n, v.credential_id, v.node, code)
            continue

        # Effects of this voucher.
        self.escrow[chk.holder][chk.payment_token] = bal - total
        self._channel[v.credential_id][v.node] = (v.cumulative_mu << 160) | (c_calls << 96) | (c_fail << 48) | c_lat
        fee_l: uint256 = license_part * fee_bps // BPS
        fee_n: uint256 = node_part * fee_bps // BPS
        log UsageRecorded(
            credential_id=v.credential_id,
            capsule_id=chk.capsule_id,
            node=v.node,
            consumer=chk.holder,
            delta_mu=d_mu,
            delta_calls=convert(c_calls - s_calls, uint64),
            delta_failures=convert(c_fail - s_fail, uint64),
            delta_latency_ms=convert(c_lat - s_lat, uint64),
            license_amount=license_part - fee_l,
            node_amount=node_part - fee_n,
            protocol_fee=fee_l + fee_n,
        )
        applied += 1

        # Aggregate (linear search over at most 64 entries; a batch usually has one or two).
        found: bool = False
        for j: uint256 in range(len(caps), bound=MAX_BATCH):
            if caps[j].capsule_id == chk.capsule_id and caps[j].token == chk.payment_token:
                caps[j].amount += license_part - fee_l
                found = True
                break
        if not found:
            caps.append(CapsuleAgg(capsule_id=chk.capsule_id, token=chk.payment_token, amount=license_part - fee_l))
        found = False
        for j: uint256 in range(len(nodes), bound=MAX_BATCH):
            if nodes[j].node == v.node and nodes[j].token == chk.payment_token:
                nodes[j].amount += node_part - fee_n
                nodes[j].fee += fee_l + fee_n
                nodes[j].calls += c_calls - s_calls
                nodes[j].failures += c_fail - s_fail
                nodes[j].latency_ms += c_lat - s_lat
                nodes[j].mu += d_mu
                found = True
                break
        if not found:
            nodes.append(NodeAgg(node=v.node, token=chk.payment_token, amount=node_part - fee_n, fee=fee_l + fee_n,
                                 calls=c_calls - s_calls, failures=c_fail - s_fail, latency_ms=c_lat - s_lat, mu=d_mu))

    # Effects of the batch, then interactions: one transfer per token to the router, O(1) credits.
    epoch: uint256 = (block.timestamp - genesis) // epoch_length
    for a: NodeAgg in nodes:
        if a.amount != 0:
            self.node_balance[a.node][a.token] += a.amount
        if a.fee != 0:
            self.fee_balance[a.token] += a.fee
        self._add_usage(a, epoch)
    for k: uint256 in range(len(caps), bound=MAX_BATCH):
        token: address = caps[k].token
        first: bool = True
        total: uint256 = 0
        for m: uint256 in range(len(caps), bound=MAX_BATCH):
            if caps[m].token == token:
                if m < k:
                    first = False
                    break
                total += caps[m].amount
        if first and total != 0:
            assert extcall IERC20(token).transfer(ROUTER, total, default_return_value=True), "meter: transfer failed"
    for c: CapsuleAgg in caps:
        if c.amount != 0:
            extcall IRoyaltyRouter(ROUTER).credit(c.capsule_id, c.token, c.amount)
    return applied


@internal
def _rejected(n: uint256, credential_id: uint256, node: address, code: uint8):
    """
    @dev A refused voucher: a one-voucher call reverts with the reason string, a batch logs
         `VoucherRejected` and goes on (nothing of that voucher was applied).
    @param n The batch size.
    @param credential_id The voucher's credential.
    @param node The voucher's node.
    @param code The reject reason.
    """
    if n == 1:
        self._revert_with(code)
    log VoucherRejected(credential_id=credential_id, node=node, reason=code)


@internal
@view
def _tee_signed(node: address, digest: bytes32, tee_signatures: DynArray[Bytes[65], MAX_BATCH], i: uint256) -> bool:
    """
    @dev Whether the node's registered TEE signer co-signed the voucher digest.
    @param node The node.
    @param digest The voucher digest.
    @param tee_signatures The batch's TEE co-signatures (empty for `ingest`).
    @param i The voucher's index.
    @return bool True if co-signed by the registered TEE signer.
    """
    pool: address = self.staking
    if len(tee_signatures) == 0 or pool == empty(address):
        return False
    tee: address = staticcall IAccessStaking(pool).tee_signer(node)
    return tee != empty(address) and self._recover(digest, tee_signatures[i]) == tee


@internal
def _add_usage(u: NodeAgg, epoch: uint256):
    """
    @dev Adds a batch's usage of one node to its epoch counters (one slot, 64-bit saturating).
    @param u The node's batch usage.
    @param epoch The current epoch.
    """
    p: uint256 = self._usage[u.node][epoch]
    calls: uint256 = min((p >> 192) + u.calls, _MASK64)
    failures: uint256 = min(((p >> 128) & _MASK64) + u.failures, _MASK64)
    latency: uint256 = min(((p >> 64) & _MASK64) + u.latency_ms, _MASK64)
    mu: uint256 = min((p & _MASK64) + min(u.mu, _MASK64), _MASK64)
    self._usage[u.node][epoch] = (calls << 192) | (failures << 128) | (latency << 64) | mu


@internal
@view
def _digest(v: IUsageMeter.Voucher) -> bytes32:
    """
    @dev EIP-712 digest of a voucher under this contract's domain (chain id and address bound).
    @param v The voucher.
    @return bytes32 The digest.
    """
    return eip712_domain_separator._hash_typed_data_v4(keccak256(abi_encode(
        VOUCHER_TYPEHASH,
        v.credential_id,
        v.node,
        v.purpose,
        v.cumulative_mu,
        v.cumulative_calls,
        v.cumulative_failures,
        v.cumulative_latency_ms,
        v.node_price_per_mu,
        v.deadline,
    )))


@internal
@pure
def _recover(digest: bytes32, sig: Bytes[65]) -> address:
    """
    @dev Non-reverting ECDSA recovery of a 65-byte (r, s, v) signature; zero address unless
         v is 27 or 28 and s <= n/2 (malleated copies and EIP-2098 forms are refused).
    @param digest The signed digest.
    @param sig The signature.
    @return address The signer or zero.
    """
    if len(sig) != 65:
        return empty(address)
    r: uint256 = extract32(sig, 0, output_type=uint256)
    s: uint256 = extract32(sig, 32, output_type=uint256)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    if v != 27 and v != 28:
        return empty(address)
    if s > _HALF_N or s == 0 or r == 0:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@view
def _signed_for(holder: address, signer: address, digest: bytes32, sig: Bytes[65]) -> bool:
    """
    @dev Slow path when the recovered signer is not the holder: a live `sigAuth` delegate of
         the holder (ERC-1056), or the holder contract's ERC-1271 approval.
    @param holder The credential holder.
    @param signer The address recovered from `sig` (zero if malformed).
    @param digest The voucher digest.
    @param sig The signature.
    @return bool True if valid.
    """
    if signer != empty(address) and IDENTITY != empty(address):
        if staticcall IDIDRegistry(IDENTITY).validDelegate(holder, SIG_AUTH, signer):
            return True
    if holder.is_contract:
        return self._erc1271_approves(holder, digest, sig)
    return False


@internal
@view
def _erc1271_approves(wallet: address, digest: bytes32, sig: Bytes[65]) -> bool:
    """
    @dev ERC-1271 check with capped gas (snekmate's `signature_checker` forwards all gas, which
         would let one hostile wallet exhaust a node's whole batch): a revert, a short or wrong
         answer, or running out of the `ERC1271_GAS` allowance all mean "not approved".
    @param wallet The holder contract.
    @param digest The voucher digest.
    @param sig The signature bytes handed to the wallet.
    @return bool True only for the ERC-1271 magic value 0x1626ba7e.
    """
    ok: bool = False
    ret: Bytes[32] = b""
    ok, ret = raw_call(
        wallet,
        abi_encode(digest, sig, method_id=method_id("isValidSignature(bytes32,bytes)")),
        max_outsize=32,
        gas=ERC1271_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    return ok and len(ret) == 32 and convert(slice(ret, 0, 4), bytes4) == 0x1626BA7E


@internal
@pure
def _revert_with(code: uint8):
    """
    @dev Reverts with the stable reason string of a reject code (single-voucher calls).
    @param code The reject reason.
    """
    if code == 1:
        raise "meter: bad signature"
    elif code == 2:
        raise "meter: deadline passed"
    elif code == 3:
        raise "meter: nothing new"
    elif code == 4:
        raise "meter: unknown credential"
    elif code == 5:
        raise "meter: credential expired"
    elif code == 6:
        raise "meter: credential revoked"
    elif code == 7:
        raise "meter: quota exceeded"
    elif code == 8:
        raise "meter: rate exceeded"
    elif code == 9:
        raise "meter: purpose outside scope"
    elif code == 10:
        raise "meter: escrow short"
    elif code == 11:
        raise "meter: tee signature missing"
    elif code == 12:
        raise "meter: counters decreased"
    elif code == 13:
        raise "meter: bad counters"
    raise "meter: rejected"
