# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title UsageMeter: consumer escrow and cumulative MU vouchers
@custom:contract-name UsageMeter
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Consumers pre-fund an escrow per token. For each (credential, node, payer) channel the
        payer signs EIP-712 `Voucher`s carrying CUMULATIVE counters (MU, calls, failures,
        latency) and `issued_at`, the time of the newest call covered. Only the voucher's node,
        or an operator the node authorised (`set_operator`), settles it; the meter charges only
        the delta over what it already settled, so a replay or an older voucher pays nothing.

        Payable window: a voucher is payable iff issued_at <= now <= issued_at +
        `settlement_window` (and its deadline is not past). Every authority is judged at
        `issued_at`, never at settlement: the signer is the payer's own key, or a `sigAuth`
        delegate of the payer whose ERC-1056 validity ends after `issued_at`; the payer held
        the credential at `issued_at`; the credential was valid, unrevoked and in scope then;
        the node served then (AccessStaking `serves`). Since `settlement_window` <
        `withdrawal_thaw`, a voucher valid when signed stays payable from the payer's escrow
        for the whole window whatever the consumer does afterwards (revoke its hot key,
        transfer the credential, request and wait out a withdrawal).

        Charge of one voucher: delta_mu * (terms.price_per_mu + node_price_per_mu), nothing
        hidden. `protocol_fee_bps` of each part feeds the Proof-of-Access reward pool; the rest
        of the license part is credited to the capsule in the RoyaltyRouter (one token
        transfer per token per batch), the rest of the node part to the node's balance.
        Paid vouchers (charge > 0) add their deltas to the node's usage of the current epoch
        (`node_usage`, read by AccessStaking), with failed_mu = delta_mu * delta_failures //
        delta_calls, so free vouchers never move a node's score.

        Each voucher is applied whole or rejected whole with `VoucherRejected(reason)` and the
        batch goes on; a one-voucher call reverts with the reason string instead. Reason
        codes: contracts/modules/reasons.vy (generated from codexfield/reasons.py).

        Example (node side, Python):
            meter.ingest([voucher_tuple], [signature], sender=node)
@custom:security Trusts the LicenseManager (`consume` / `unconsume`: validity, holder, quota,
        rate, scope, revocation at `issued_at`), the RoyaltyRouter (`credit` after the
        transfer), the IdentityRegistry (`delegates` for `sigAuth` hot keys), all immutable,
        and AccessStaking (`serves`, `tee_signer`, `fund_rewards`), wired once by `wire`.
        Nothing governance can set redirects funds: the wiring is one-time, the fee is capped
        and only fees in tokens other than the reward token reach the treasury. Signatures:
        EOA path in-line with s <= n/2 and v in {27, 28} (no reverts inside a batch), then
        ERC-1056 `sigAuth` delegates; no ERC-1271 (a wallet whose live approval could change
        after service would void served usage: contract wallets add a `sigAuth` delegate).
        Replays are impossible by construction: a voucher's effect is the delta over stored
        cumulative counters, which never decrease.
@custom:kill Pausing stops `deposit` only. It never stops `ingest` / `ingest_attested`
        (settling usage already signed), `request_withdrawal`, `withdraw`, `claim_node` or
        `sweep_fees`: settlement and withdrawals keep their relative order whatever is paused.
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
from .modules import reasons

# @dev secp256k1 signature checks (v in {27, 28}, 0 < s <= n/2, r != 0): one routine for every signed message.
from .modules import sig

# @dev The fee-on-transfer balance check of a transfer in (one copy for every contract).
from .modules import erc20_exact

# @dev The bit masks of the packed words (`(word >> offset) & masks.MASKk`).
from .modules import masks

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


# @dev The ERC-1056 registry, as far as the meter reads it (validity end of a delegate, keyed
#      by keccak256 of the delegate type).
interface IDIDRegistry:
    def delegates(identity: address, delegate_type_hash: bytes32, delegate: address) -> uint256: view


# @dev Per-batch accumulator of revenue for one (capsule, token).
struct CapsuleAgg:
    capsule_id: uint256
    token: address
    amount: uint256


# @dev Role that may pause deposits.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev EIP-712 type hash of `Voucher`.
VOUCHER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Voucher(uint256 credential_id,address node,address payer,uint256 purpose,uint256 cumulative_mu,uint64 cumulative_calls,uint64 cumulative_failures,uint64 cumulative_latency_ms,uint256 node_price_per_mu,uint64 issued_at,uint64 deadline)"
)


# @dev ERC-1056 delegate type allowed to sign vouchers for a holder ("sigAuth", right-padded).
SIG_AUTH: public(constant(bytes32)) = 0x7369674175746800000000000000000000000000000000000000000000000000


# @dev keccak256(SIG_AUTH): the key of ERC-1056 `delegates`.
_SIG_AUTH_HASH: constant(bytes32) = keccak256(SIG_AUTH)


# @dev Largest batch.
MAX_BATCH: public(constant(uint256)) = 64


# @dev Distinct (capsule, token) entries a batch accumulates before paying them out.
_MAX_CAPS: constant(uint256) = 8


# @dev Upper bound of the protocol fee (10%).
MAX_FEE_BPS: public(constant(uint256)) = 1_000


# @dev Basis points in a whole.
BPS: constant(uint256) = 10_000


# @dev The LicenseManager that prices and authorises credentials.
license_manager: public(immutable(address))


# @dev The RoyaltyRouter that receives the license part of every charge.
router: public(immutable(address))


# @dev The ERC-1056 IdentityRegistry consulted for `sigAuth` delegates (zero: none).
identity: public(immutable(address))


# @dev Seconds after a voucher's `issued_at` during which it is payable (< withdrawal_thaw).
settlement_window: public(immutable(uint256))


# @dev Epoch length in seconds (shared with AccessStaking).
epoch_length: public(immutable(uint256))


# @dev Start of epoch 0 (shared with AccessStaking).
genesis: public(immutable(uint256))


# @dev Seconds a requested escrow withdrawal thaws before it can leave.
withdrawal_thaw: public(immutable(uint256))


# @dev AccessStaking (who serves, TEE signers, the reward pool the protocol fee feeds; zero until
#      `wire`) 160 | protocol fee in bps at bit 160: the two settings every batch reads, one slot.
_config: uint256


# @dev Operators a node authorised to settle its vouchers: node => operator => allowed.
operators: public(HashMap[address, HashMap[address, bool]])


# @dev Where protocol fees in tokens other than the staking reward token go.
treasury: public(address)


# @dev Escrow: consumer => token => balance.
escrow: public(HashMap[address, HashMap[address, uint256]])


# @dev Pending withdrawal: consumer => token => request.
withdrawals: public(HashMap[address, HashMap[address, IUsageMeter.Withdrawal]])


# @dev Settled cumulative counters per channel (credential, node, payer), packed from the high
#      bits down: mu 80 | calls 48 | failures 40 | latency_ms 48 | issued_at 40.
#      Keyed by `_channel_key` (one hash for the read and the write of a voucher).
_channel: HashMap[bytes32, uint256]


# @dev Node earnings: node => token => balance.
node_balance: public(HashMap[address, HashMap[address, uint256]])


# @dev Protocol fees not yet swept: token => amount.
fee_balance: public(HashMap[address, uint256])


# @dev Per node and epoch of settlement, one slot of PAID usage settled by the node or its
#      operators (AccessStaking reads it once per node when it finalizes): calls 48 |
#      failures 48 | latency_ms 56 | mu 52 | failed_mu 52, high to low, each saturating.
_usage: HashMap[address, HashMap[uint256, uint256]]



# Events: declared once, with their @dev lines, in interfaces/IUsageMeter.vyi (`log IUsageMeter.X`).


@deploy
def __init__(
    license_manager_: address,
    router_: address,
    identity_: address,
    admin_: address,
    epoch_length_: uint256,
    genesis_: uint256,
    settlement_window_: uint256,
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
    @param settlement_window_ Seconds a voucher stays payable after its `issued_at` (non-zero,
           shorter than the thaw; `LicenseManager.wire` checks it equals the LicenseManager's).
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
    assert settlement_window_ > 0 and settlement_window_ <= masks.MASK40, "meter: bad settlement window"
    assert settlement_window_ < withdrawal_thaw_, "meter: thaw not above window"
    license_manager = license_manager_
    router = router_
    identity = identity_
    epoch_length = epoch_length_
    genesis = genesis_
    settlement_window = settlement_window_
    withdrawal_thaw = withdrawal_thaw_
    self._config = protocol_fee_bps_ << 160
    self.treasury = admin_
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    log IUsageMeter.MeterConfigured(
        epoch_length=epoch_length_,
        genesis=genesis_,
        settlement_window=settlement_window_,
        withdrawal_thaw=withdrawal_thaw_,
    )


# --- escrow --------------------------------------------------------------------------------


@external
def deposit(token: address, amount: uint256, beneficiary: address):
    """
    @dev Funds `beneficiary`'s escrow with `amount` of `token` pulled from the caller (the only
         thing a pause stops).
    @notice Fee-on-transfer tokens are refused (the received amount must equal `amount`).
    @param token The ERC-20 token.
    @param amount The amount (non-zero).
    @param beneficiary The consumer credited.
    """
    assert not pausable.paused, "meter: paused"
    assert amount > 0, "meter: zero amount"
    assert beneficiary != empty(address), "meter: zero beneficiary"
    ok: bool = False
    received: uint256 = 0
    balance: uint256 = 0
    ok, received, balance = erc20_exact.transfer_from(token, msg.sender, self, amount)
    assert ok, "meter: transfer failed"
    assert received == amount, "meter: fee-on-transfer token"
    self.escrow[beneficiary][token] += amount
    log IUsageMeter.Deposited(beneficiary=beneficiary, token=token, amount=amount, payer=msg.sender)


@external
def request_withdrawal(token: address, amount: uint256):
    """
    @dev Starts the thaw of `amount` of the caller's escrow (replaces a pending request; 0 cancels).
    @notice Thawing escrow stays chargeable by vouchers until it leaves; the thaw is longer than
            the settlement window, so every voucher signed before the request can still be settled.
    @param token The token.
    @param amount The amount to withdraw after the thaw.
    """
    assert amount <= self.escrow[msg.sender][token], "meter: amount above escrow"
    ready_at: uint256 = 0
    if amount > 0:
        ready_at = block.timestamp + withdrawal_thaw
    self.withdrawals[msg.sender][token] = IUsageMeter.Withdrawal(amount=amount, ready_at=ready_at)
    log IUsageMeter.WithdrawalRequested(consumer=msg.sender, token=token, amount=amount, ready_at=ready_at)


@external
def withdraw(token: address, to: address) -> uint256:
    """
    @dev Sends the caller's thawed withdrawal (capped by what is left in escrow) to `to`. Works
         when paused.
    @notice `to` lets a consumer whose own address the token blocks (a blacklisting token) still
            take its escrow out.
    @param token The token.
    @param to The receiver (non-zero).
    @return uint256 The amount sent.
    """
    assert to != empty(address), "meter: zero receiver"
    w: IUsageMeter.Withdrawal = self.withdrawals[msg.sender][token]
    assert w.amount > 0, "meter: no withdrawal requested"
    assert block.timestamp >= w.ready_at, "meter: still thawing"
    amount: uint256 = min(w.amount, self.escrow[msg.sender][token])
    self.withdrawals[msg.sender][token] = empty(IUsageMeter.Withdrawal)
    self.escrow[msg.sender][token] -= amount
    if amount > 0:
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "meter: transfer failed"
    log IUsageMeter.Withdrawn(consumer=msg.sender, token=token, amount=amount, to=to)
    return amount


# --- vouchers ------------------------------------------------------------------------------


@external
def ingest(vouchers: DynArray[IUsageMeter.Voucher, MAX_BATCH], signatures: DynArray[Bytes[65], MAX_BATCH]) -> uint256:
    """
    @dev Applies a batch of payer-signed cumulative vouchers (the caller must be each voucher's
         node or an operator it authorised; other vouchers are rejected alone). Never paused.
    @notice Each voucher is applied whole or rejected whole (`VoucherRejected`), and the batch
            goes on; with a single voucher a rejection reverts with its reason. Vouchers whose
            credential's scope has TEE_REQUIRED are rejected here: use `ingest_attested`.
    @param vouchers Up to 64 vouchers.
    @param signatures One 65-byte (r, s, v) signature per voucher, by the payer's key or a
           `sigAuth` delegate of the payer in the IdentityRegistry valid after `issued_at`.
    @return uint256 How many vouchers were applied.
    """
    assert len(vouchers) > 0, "meter: empty batch"
    assert len(signatures) == len(vouchers), "meter: length mismatch"
    return self._ingest(len(vouchers), False)


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
    @param signatures Payer-side signatures.
    @param tee_signatures The node's registered TEE signer's signature of the same digest.
    @return uint256 How many vouchers were applied.
    """
    assert len(tee_signatures) == len(vouchers), "meter: length mismatch"
    assert len(vouchers) > 0, "meter: empty batch"
    assert len(signatures) == len(vouchers), "meter: length mismatch"
    return self._ingest(len(vouchers), True)



@external
def set_operator(operator: address, allowed: bool):
    """
    @dev Authorises (or stops) `operator` to settle the caller's (a node's) vouchers.
    @notice Usage counts toward a node's Proof-of-Access score only through settlements by the
            node itself or its operators.
    @param operator The relayer address (non-zero).
    @param allowed Whether it may settle for the caller.
    """
    assert operator != empty(address), "meter: zero operator"
    self.operators[msg.sender][operator] = allowed
    log IUsageMeter.OperatorSet(node=msg.sender, operator=operator, allowed=allowed)


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
    log IUsageMeter.NodeClaimed(node=msg.sender, token=token, to=to, amount=amount)
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
    pool: address = self._staking()
    if pool != empty(address) and staticcall IAccessStaking(pool).reward_token() == token:
        assert extcall IERC20(token).approve(pool, amount, default_return_value=True), "meter: approve failed"
        extcall IAccessStaking(pool).fund_rewards(amount)
        log IUsageMeter.FeesSwept(token=token, amount=amount, to=pool)
    else:
        to: address = self.treasury
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "meter: transfer failed"
        log IUsageMeter.FeesSwept(token=token, amount=amount, to=to)
    return amount


# --- admin ---------------------------------------------------------------------------------


@external
def wire(staking_: address):
    """
    @dev Wires AccessStaking once (admin); it can never change afterwards.
    @param staking_ AccessStaking (its epochs must match the meter's).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self._staking() == empty(address), "meter: already wired"
    assert staking_ != empty(address), "meter: zero staking"
    assert staticcall IAccessStaking(staking_).epoch_length() == epoch_length, "meter: epoch mismatch"
    assert staticcall IAccessStaking(staking_).genesis() == genesis, "meter: epoch mismatch"
    self._config = (self._config >> 160 << 160) | convert(staking_, uint256)
    log IUsageMeter.Wired(staking=staking_)


@external
def set_fee(treasury_: address, protocol_fee_bps_: uint256):
    """
    @dev Sets the treasury (receiver of fees in tokens other than the reward token) and the
         protocol fee (admin, at most MAX_FEE_BPS).
    @param treasury_ Receiver of fees in other tokens (non-zero).
    @param protocol_fee_bps_ Protocol fee, at most 1,000 bps.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert treasury_ != empty(address), "meter: zero treasury"
    assert protocol_fee_bps_ <= MAX_FEE_BPS, "meter: fee too high"
    self.treasury = treasury_
    self._config = (protocol_fee_bps_ << 160) | (self._config & masks.MASK160)
    log IUsageMeter.ConfigChanged(treasury=treasury_, protocol_fee_bps=protocol_fee_bps_)


@external
def pause():
    """
    @dev Stops deposits (PAUSER); settlement and withdrawals go on.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    assert not pausable.paused, "meter: paused"
    pausable._pause()


@external
def unpause():
    """
    @dev Resumes deposits (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    assert pausable.paused, "meter: not paused"
    pausable._unpause()


# --- views ---------------------------------------------------------------------------------


@external
@view
def settled(credential_id: uint256, node: address, payer: address) -> (uint256, uint64, uint64, uint64, uint64):
    """
    @dev The cumulative counters settled on a channel and the `issued_at` of its last voucher.
    @param credential_id The credential.
    @param node The node.
    @param payer The payer.
    @return uint256 cumulative_mu
    @return uint64 cumulative_calls
    @return uint64 cumulative_failures
    @return uint64 cumulative_latency_ms
    @return uint64 issued_at
    """
    p: uint256 = self._channel[self._channel_key(credential_id, node, payer)]
    return p >> 176, convert((p >> 128) & masks.MASK48, uint64), convert((p >> 88) & masks.MASK40, uint64), convert(
        (p >> 40) & masks.MASK48, uint64
    ), convert(p & masks.MASK40, uint64)


@external
@view
def node_usage(node: address, epoch: uint256) -> IUsageMeter.NodeUsage:
    """
    @dev Paid usage the node (or its operators) settled during `epoch` (read by AccessStaking).
    @param node The node.
    @param epoch The epoch number.
    @return NodeUsage (calls, failures, latency_ms_sum, mu, failed_mu).
    """
    p: uint256 = self._usage[node][epoch]
    return IUsageMeter.NodeUsage(
        calls=convert(p >> 208, uint64),
        failures=convert((p >> 160) & masks.MASK48, uint64),
        latency_ms_sum=convert((p >> 104) & masks.MASK56, uint64),
        mu=(p >> 52) & masks.MASK52,
        failed_mu=p & masks.MASK52,
    )


@external
@view
def staking() -> address:
    """
    @dev The AccessStaking wired once by `wire` (zero until then).
    @return address AccessStaking.
    """
    return self._staking()


@external
@view
def protocol_fee_bps() -> uint256:
    """
    @dev The protocol fee, in basis points of each charge.
    @return uint256 The fee (at most MAX_FEE_BPS).
    """
    return self._config >> 160


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
    @dev The EIP-712 digest a payer signs for `v` (for SDKs to cross-check).
    @param v The voucher.
    @return bytes32 The digest.
    """
    return self._digest(v)


# --- internals -----------------------------------------------------------------------------


@internal
@view
def _staking() -> address:
    """
    @dev AccessStaking from the packed `_config` word (zero until `wire`).
    @return address AccessStaking.
    """
    return convert(convert(self._config & masks.MASK160, uint160), address)


@internal
@pure
def _channel_key(credential_id: uint256, node: address, payer: address) -> bytes32:
    """
    @dev The `_channel` key of a (credential, node, payer) channel.
    @param credential_id The credential.
    @param node The node.
    @param payer The payer.
    @return bytes32 keccak256 of the three, ABI-encoded.
    """
    return keccak256(abi_encode(credential_id, node, payer))


@internal
@view
def _word(at: uint256) -> uint256:
    """
    @dev The calldata word at byte `at`.
    @param at A calldata offset.
    @return uint256 The word.
    """
    return convert(slice(msg.data, at, 32), uint256)


@internal
def _ingest(n: uint256, attested: bool) -> uint256:
    """
    @dev Settles the batch of `ingest` / `ingest_attested` voucher by voucher, reading each
         voucher and signature in place from calldata (Vyper validated every field when it
         copied the arguments; reading them again costs a calldata copy, handing them to an
         internal function would copy the 64-voucher arrays and expand memory).
    @param n The number of vouchers (checked non-zero, equal to the signatures).
    @param attested Whether the call carries TEE co-signatures (`ingest_attested`).
    @return uint256 How many vouchers were applied.
    """
    config: uint256 = self._config
    fee_bps: uint256 = config >> 160
    pool: address = convert(convert(config & masks.MASK160, uint160), address)
    domain: bytes32 = eip712_domain_separator._domain_separator_v4()
    # ABI heads: each array's offset (from byte 4) is in the head word; its elements start one
    # word (the length) later. The arithmetic is Vyper's own argument decoding, unchecked alike.
    vs_at: uint256 = unsafe_add(self._word(4), 36)
    sigs_at: uint256 = unsafe_add(self._word(36), 36)
    tees_at: uint256 = 0
    if attested:
        tees_at = unsafe_add(self._word(68), 36)
    epoch: uint256 = (block.timestamp - genesis) // epoch_length
    caps: DynArray[CapsuleAgg, _MAX_CAPS] = []
    run_node: address = empty(address)
    run_token: address = empty(address)
    run_amount: uint256 = 0
    run_calls: uint256 = 0
    run_fail: uint256 = 0
    run_lat: uint256 = 0
    run_mu: uint256 = 0
    run_failed: uint256 = 0
    cap_id: uint256 = 0
    cap_token: address = empty(address)
    cap_amount: uint256 = 0
    fee_token: address = empty(address)
    fee_amount: uint256 = 0
    last_node: address = empty(address)
    last_at: uint256 = 0
    last_serves: bool = False
    applied: uint256 = 0
    for i: uint256 in range(n, bound=MAX_BATCH):
        encoded: Bytes[352] = slice(msg.data, unsafe_add(vs_at, unsafe_mul(i, 352)), 352)
        v: IUsageMeter.Voucher = abi_decode(encoded, IUsageMeter.Voucher)
        if v.node != msg.sender and not self.operators[v.node][msg.sender]:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_NOT_SETTLER)
            continue
        at: uint256 = convert(v.issued_at, uint256)
        if convert(v.deadline, uint256) < block.timestamp:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_DEADLINE_PASSED)
            continue
        if at > block.timestamp or block.timestamp > at + settlement_window:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_OUTSIDE_WINDOW)
            continue
        c_calls: uint256 = convert(v.cumulative_calls, uint256)
        c_fail: uint256 = convert(v.cumulative_failures, uint256)
        c_lat: uint256 = convert(v.cumulative_latency_ms, uint256)
        if (
            c_fail > c_calls
            or (v.cumulative_mu >> 80) | (c_calls >> 48) | (c_fail >> 40) | (c_lat >> 48) | (at >> 40) != 0
        ):
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_BAD_COUNTERS)
            continue
        channel: bytes32 = self._channel_key(v.credential_id, v.node, v.payer)
        packed: uint256 = self._channel[channel]
        s_mu: uint256 = packed >> 176
        s_calls: uint256 = (packed >> 128) & masks.MASK48
        s_fail: uint256 = (packed >> 88) & masks.MASK40
        s_lat: uint256 = (packed >> 40) & masks.MASK48
        if v.cumulative_mu <= s_mu and c_calls <= s_calls and c_fail <= s_fail and c_lat <= s_lat:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_NOTHING_NEW)
            continue
        if v.cumulative_mu < s_mu or c_calls < s_calls or c_fail < s_fail or c_lat < s_lat:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_COUNTER_DECREASED)
            continue
        d_mu: uint256 = unsafe_sub(v.cumulative_mu, s_mu)
        if v.node != last_node or at != last_at:
            last_node = v.node
            last_at = at
            last_serves = pool != empty(address) and staticcall IAccessStaking(pool).serves(v.node, at)
        if not last_serves:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_NODE_INACTIVE)
            continue
        # Checked math that rejects instead of reverting: the node part must fit 256 bits.
        if v.node_price_per_mu != 0 and d_mu > max_value(uint256) // v.node_price_per_mu:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_PRICE_OVERFLOW)
            continue
        # Recover first (no state needed), then ONE LicenseManager call that checks holder,
        # validity, quota, rate and scope at `issued_at`, applies the MU and returns the price.
        # If the voucher then fails here (signature, TEE, escrow), `unconsume` restores the
        # credential exactly.
        digest: bytes32 = self._digest_of(domain, encoded)
        signer: address = self._recover_at(digest, sigs_at, i)
        chk: ILicenseManager.UsageCheck = extcall ILicenseManager(license_manager).consume(
            v.credential_id, d_mu, v.purpose, at, v.payer
        )
        if chk.status != 0:
            self._rejected(n, v.credential_id, v.node, v.payer, chk.status)
            continue
        code: uint8 = 0
        if signer != v.payer or signer == empty(address):
            if not self._delegate_at(v.payer, signer, at):
                code = reasons.R_BAD_SIGNATURE
        if code == 0 and chk.scope & scopes.SCOPE_TEE_REQUIRED != 0:
            if not attested or not self._tee_signed(pool, v.node, digest, self._recover_at(digest, tees_at, i)):
                code = reasons.R_TEE_SIGNATURE_MISSING
        license_part: uint256 = d_mu * chk.price_per_mu  # price < 2**128, d_mu < 2**80: fits
        node_part: uint256 = unsafe_mul(d_mu, v.node_price_per_mu)  # checked above
        total: uint256 = 0  # the sum is checked: it may not fit
        if node_part > max_value(uint256) - license_part:
            if code == 0:
                code = reasons.R_PRICE_OVERFLOW
        else:
            total = unsafe_add(license_part, node_part)
        bal: uint256 = self.escrow[v.payer][chk.payment_token]
        if code == 0 and bal < total:
            code = reasons.R_ESCROW_SHORT
        if code != 0:
            if d_mu != 0:
                extcall ILicenseManager(license_manager).unconsume(v.credential_id)
            self._rejected(n, v.credential_id, v.node, v.payer, code)
            continue
        # Effects of this voucher.
        self.escrow[v.payer][chk.payment_token] = unsafe_sub(bal, total)
        self._channel[channel] = (
            (v.cumulative_mu << 176) | (c_calls << 128) | (c_fail << 88) | (c_lat << 40) | at
        )
        fee_l: uint256 = unsafe_div(license_part * fee_bps, BPS)
        fee_n: uint256 = unsafe_div(node_part * fee_bps, BPS)
        d_calls: uint256 = unsafe_sub(c_calls, s_calls)
        d_fail: uint256 = unsafe_sub(c_fail, s_fail)
        d_lat: uint256 = unsafe_sub(c_lat, s_lat)
        log IUsageMeter.UsageRecorded(
            credential_id=v.credential_id,
            capsule_id=chk.capsule_id,
            node=v.node,
            payer=v.payer,
            issued_at=v.issued_at,
            delta_mu=d_mu,
            delta_calls=convert(d_calls, uint64),
            delta_failures=convert(d_fail, uint64),
            delta_latency_ms=convert(d_lat, uint64),
            license_amount=unsafe_sub(license_part, fee_l),
            node_amount=unsafe_sub(node_part, fee_n),
            protocol_fee=unsafe_add(fee_l, fee_n),
            paid=total != 0,
        )
        applied = unsafe_add(applied, 1)
        if total == 0:
            continue
        # Net what the voucher moves: consecutive vouchers of one (node, token), of one fee token
        # and of one (capsule, token) add up in memory ("runs"); a node or fee run is booked when
        # its key changes, a capsule run joins the few (capsule, token) entries paid out at the end.
        if v.node != run_node or chk.payment_token != run_token:
            if run_node != empty(address):
                self._book_node(run_node, run_token, run_amount, run_calls, run_fail, run_lat, run_mu, run_failed, epoch)
            run_node = v.node
            run_token = chk.payment_token
            run_amount = 0
            run_calls = 0
            run_fail = 0
            run_lat = 0
            run_mu = 0
            run_failed = 0
        run_amount += unsafe_sub(node_part, fee_n)
        # At most 64 vouchers of < 2**81 each: the usage sums cannot overflow.
        run_calls = unsafe_add(run_calls, d_calls)
        run_fail = unsafe_add(run_fail, d_fail)
        run_lat = unsafe_add(run_lat, d_lat)
        run_mu = unsafe_add(run_mu, d_mu)
        if d_calls != 0:
            run_failed = unsafe_add(run_failed, unsafe_div(unsafe_mul(d_mu, d_fail), d_calls))  # < 2**120
        if chk.payment_token != fee_token:
            if fee_amount != 0:
                self.fee_balance[fee_token] += fee_amount
            fee_token = chk.payment_token
            fee_amount = 0
        fee_amount += unsafe_add(fee_l, fee_n)
        if chk.capsule_id != cap_id or chk.payment_token != cap_token:
            if cap_amount != 0:
                caps = self._join_cap(caps, cap_id, cap_token, cap_amount)
            cap_id = chk.capsule_id
            cap_token = chk.payment_token
            cap_amount = 0
        cap_amount += unsafe_sub(license_part, fee_l)
    # Effects of the batch, then interactions: one transfer per token to the router, O(1) credits.
    if run_node != empty(address):
        self._book_node(run_node, run_token, run_amount, run_calls, run_fail, run_lat, run_mu, run_failed, epoch)
    if fee_amount != 0:
        self.fee_balance[fee_token] += fee_amount
    if cap_amount != 0:
        caps = self._join_cap(caps, cap_id, cap_token, cap_amount)
    self._flush_caps(caps)
    return applied


@internal
def _book_node(
    node: address,
    token: address,
    amount: uint256,
    calls: uint256,
    failures: uint256,
    latency_ms: uint256,
    mu: uint256,
    failed_mu: uint256,
    epoch: uint256,
):
    """
    @dev Books a run of one node's earnings in one token and adds its paid usage to the node's
         epoch counters (one slot, each field saturating). Effects only.
    @param node The node.
    @param token The token.
    @param amount The node's earnings of the run.
    @param calls The run's settled calls.
    @param failures Its failed calls.
    @param latency_ms Its latency sum.
    @param mu Its MU.
    @param failed_mu Its failed MU.
    @param epoch The current epoch.
    """
    if amount != 0:
        self.node_balance[node][token] += amount
    p: uint256 = self._usage[node][epoch]
    calls_: uint256 = min((p >> 208) + calls, masks.MASK48)
    failures_: uint256 = min(((p >> 160) & masks.MASK48) + failures, masks.MASK48)
    latency_: uint256 = min(((p >> 104) & masks.MASK56) + latency_ms, masks.MASK56)
    mu_: uint256 = min(((p >> 52) & masks.MASK52) + min(mu, masks.MASK52), masks.MASK52)
    failed_: uint256 = min((p & masks.MASK52) + min(failed_mu, masks.MASK52), masks.MASK52)
    self._usage[node][epoch] = (calls_ << 208) | (failures_ << 160) | (latency_ << 104) | (mu_ << 52) | failed_


@internal
def _join_cap(
    caps_: DynArray[CapsuleAgg, _MAX_CAPS], capsule_id: uint256, token: address, amount: uint256
) -> DynArray[CapsuleAgg, _MAX_CAPS]:
    """
    @dev Adds a run of license revenue to the batch's (capsule, token) entries; when they are
         full and the key is new, pays them out first (`_flush_caps`).
    @param caps_ The entries so far.
    @param capsule_id The capsule.
    @param token The token.
    @param amount The run's license revenue.
    @return DynArray The entries with the run added.
    """
    caps: DynArray[CapsuleAgg, _MAX_CAPS] = caps_
    for j: uint256 in range(len(caps), bound=_MAX_CAPS):
        if caps[j].capsule_id == capsule_id and caps[j].token == token:
            caps[j].amount += amount
            return caps
    if len(caps) == _MAX_CAPS:
        self._flush_caps(caps)
        caps = []
    caps.append(CapsuleAgg(capsule_id=capsule_id, token=token, amount=amount))
    return caps


@internal
def _flush_caps(caps: DynArray[CapsuleAgg, _MAX_CAPS]):
    """
    @dev Moves accumulated license revenue to the router: one transfer per token, then one
         `credit` per (capsule, token). Called after the effects of every voucher it covers
         (mid-batch only when the accumulator is full; the meter is nonreentrant).
    @param caps The accumulated (capsule, token) entries.
    """
    for k: uint256 in range(len(caps), bound=_MAX_CAPS):
        token: address = caps[k].token
        first: bool = True
        total: uint256 = 0
        for m: uint256 in range(len(caps), bound=_MAX_CAPS):
            if caps[m].token == token:
                if m < k:
                    first = False
                    break
                total += caps[m].amount
        if first and total != 0:
            assert extcall IERC20(token).transfer(router, total, default_return_value=True), "meter: transfer failed"
    for k: uint256 in range(len(caps), bound=_MAX_CAPS):
        if caps[k].amount != 0:
            extcall IRoyaltyRouter(router).credit(caps[k].capsule_id, caps[k].token, caps[k].amount)


@internal
def _rejected(n: uint256, credential_id: uint256, node: address, payer: address, code: uint8):
    """
    @dev A refused voucher: a one-voucher call reverts with the reason string, a batch logs
         `VoucherRejected` and goes on (nothing of that voucher was applied).
    @param n The batch size.
    @param credential_id The voucher's credential.
    @param node The voucher's node.
    @param payer The voucher's payer.
    @param code The reject reason.
    """
    if n == 1:
        reasons.revert_with(code)
    log IUsageMeter.VoucherRejected(credential_id=credential_id, node=node, payer=payer, reason=code)


@internal
@view
def _recover_at(digest: bytes32, sigs_at: uint256, i: uint256) -> address:
    """
    @dev `sig.recover` of the i-th signature of a calldata `Bytes[65]` array whose elements
         start at `sigs_at` (any length but 65 recovers nothing).
    @param digest The signed digest.
    @param sigs_at Calldata offset of the array's first element (after its length word).
    @param i The index.
    @return address The signer, or zero.
    """
    at: uint256 = unsafe_add(sigs_at, self._word(unsafe_add(sigs_at, unsafe_mul(i, 32))))
    # A 65-byte signature is padded to 96 bytes after its length word: all of it is calldata.
    if unsafe_add(at, 128) > len(msg.data):
        return empty(address)
    raw: Bytes[97] = slice(msg.data, at, 97)
    if extract32(raw, 0, output_type=uint256) != 65:
        return empty(address)
    return sig.recover(
        digest,
        convert(slice(raw, 96, 1), uint256),
        extract32(raw, 32, output_type=uint256),
        extract32(raw, 64, output_type=uint256),
    )


@internal
@view
def _tee_signed(pool: address, node: address, digest: bytes32, tee: address) -> bool:
    """
    @dev Whether the node's registered TEE signer co-signed the voucher digest.
    @param pool AccessStaking (zero: not wired).
    @param node The node.
    @param digest The voucher digest.
    @param tee The address the voucher's TEE co-signature recovers (zero: none).
    @return bool True if co-signed by the registered TEE signer.
    """
    if pool == empty(address) or tee == empty(address):
        return False
    return staticcall IAccessStaking(pool).tee_signer(node) == tee


@internal
@pure
def _digest_of(domain: bytes32, encoded: Bytes[352]) -> bytes32:
    """
    @dev EIP-712 digest of a voucher from its ABI encoding (11 words: each EIP-712 field of a
         `Voucher` encodes as its ABI word) under the domain separator `domain`.
    @param domain This contract's EIP-712 domain separator.
    @param encoded `abi_encode(voucher)`, or the voucher's validated calldata.
    @return bytes32 The digest.
    """
    return keccak256(concat(x"1901", domain, keccak256(concat(VOUCHER_TYPEHASH, encoded))))



@internal
@view
def _digest(v: IUsageMeter.Voucher) -> bytes32:
    """
    @dev EIP-712 digest of a voucher under this contract's domain (chain id and address bound).
    @param v The voucher.
    @return bytes32 The digest.
    """
    return self._digest_of(eip712_domain_separator._domain_separator_v4(), abi_encode(v))


@internal
@view
def _delegate_at(payer: address, signer: address, at: uint256) -> bool:
    """
    @dev Slow path when the recovered signer is not the payer: a `sigAuth` delegate of the payer
         (ERC-1056) whose validity ends after `at`. Revoking it later does not void the voucher.
    @param payer The voucher's payer.
    @param signer The address recovered from the signature (zero if malformed).
    @param at The voucher's `issued_at`.
    @return bool True if `signer` could sign for `payer` at `at`.
    """
    if signer == empty(address) or identity == empty(address):
        return False
    return staticcall IDIDRegistry(identity).delegates(payer, _SIG_AUTH_HASH, signer) > at
