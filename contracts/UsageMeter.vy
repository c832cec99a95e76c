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

        This deployable composes one module per mechanism (contracts/modules/, as AccessStaking
        composes `poa_*` and curve's deployables compose `controller.vy`) and keeps the
        settlement pass that joins them (`_ingest`, in named steps), the wiring and the pause.
        `meter_escrow` consumer escrow and withdrawals, `meter_channels` the cumulative counters
        per (credential, node, payer), `meter_vouchers` reading vouchers and signatures in
        place from calldata, their EIP-712 digest and signer, `meter_nodes` operators, node
        earnings and paid usage per epoch, `meter_fees` the settings slot and the protocol
        fee pool, `meter_payout` the batch's license revenue paid to the RoyaltyRouter. Every
        event is declared once, in `interfaces/IUsageMeter.vyi`.
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

from interfaces import ILicenseManager
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

# @dev The bit masks of the packed words (`(word >> offset) & masks.MASKk`).
from .modules import masks

from .modules import meter_escrow

initializes: meter_escrow[pausable := pausable]

from .modules import meter_channels

initializes: meter_channels

from .modules import meter_vouchers

initializes: meter_vouchers

from .modules import meter_nodes

initializes: meter_nodes

from .modules import meter_fees

initializes: meter_fees

from .modules import meter_payout

exports: (
    # Roles (admin meant to be a timelock); pausing goes through `pause`/`unpause` below.
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
    # Consumer escrow.
    meter_escrow.withdrawal_thaw,
    meter_escrow.escrow,
    meter_escrow.withdrawals,
    meter_escrow.deposit,
    meter_escrow.request_withdrawal,
    meter_escrow.withdraw,
    # Channels.
    meter_channels.settled,
    # Vouchers and their signers.
    meter_vouchers.VOUCHER_TYPEHASH,
    meter_vouchers.SIG_AUTH,
    meter_vouchers.identity,
    # Nodes.
    meter_nodes.operators,
    meter_nodes.node_balance,
    meter_nodes.set_operator,
    meter_nodes.claim_node,
    meter_nodes.node_usage,
    # Settings and protocol fees.
    meter_fees.MAX_FEE_BPS,
    meter_fees.treasury,
    meter_fees.fee_balance,
    meter_fees.staking,
    meter_fees.protocol_fee_bps,
    meter_fees.sweep_fees,
)


# @dev Role that may pause deposits.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev Largest batch.
MAX_BATCH: public(constant(uint256)) = 64


# @dev The LicenseManager that prices and authorises credentials.
license_manager: public(immutable(address))


# @dev The RoyaltyRouter that receives the license part of every charge.
router: public(immutable(address))


# @dev Seconds after a voucher's `issued_at` during which it is payable (< withdrawal_thaw).
settlement_window: public(immutable(uint256))


# @dev Epoch length in seconds (shared with AccessStaking).
epoch_length: public(immutable(uint256))


# @dev Start of epoch 0 (shared with AccessStaking).
genesis: public(immutable(uint256))


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
    assert protocol_fee_bps_ <= meter_fees.MAX_FEE_BPS, "meter: fee too high"
    assert settlement_window_ > 0 and settlement_window_ <= masks.MASK40, "meter: bad settlement window"
    assert settlement_window_ < withdrawal_thaw_, "meter: thaw not above window"
    meter_escrow.__init__(withdrawal_thaw_)
    meter_vouchers.__init__(identity_)
    license_manager = license_manager_
    router = router_
    epoch_length = epoch_length_
    genesis = genesis_
    settlement_window = settlement_window_
    meter_fees.config = protocol_fee_bps_ << meter_fees.FEE_AT
    meter_fees.treasury = admin_
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


# --- admin ---------------------------------------------------------------------------------


@external
def wire(staking_: address):
    """
    @dev Wires AccessStaking once (admin); it can never change afterwards.
    @param staking_ AccessStaking (its epochs must match the meter's).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert meter_fees.pool() == empty(address), "meter: already wired"
    assert staking_ != empty(address), "meter: zero staking"
    assert staticcall IAccessStaking(staking_).epoch_length() == epoch_length, "meter: epoch mismatch"
    assert staticcall IAccessStaking(staking_).genesis() == genesis, "meter: epoch mismatch"
    meter_fees.config = (meter_fees.config >> meter_fees.FEE_AT << meter_fees.FEE_AT) | convert(staking_, uint256)
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
    assert protocol_fee_bps_ <= meter_fees.MAX_FEE_BPS, "meter: fee too high"
    meter_fees.treasury = treasury_
    meter_fees.config = (protocol_fee_bps_ << meter_fees.FEE_AT) | (meter_fees.config & masks.MASK160)
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
    return meter_vouchers.digest_of(eip712_domain_separator._domain_separator_v4(), abi_encode(v))


# --- the settlement pass -------------------------------------------------------------------


@internal
def _ingest(n: uint256, attested: bool) -> uint256:
    """
    @dev The settlement pass of `ingest` / `ingest_attested`: voucher by voucher, (1) read it in
         place, (2) check it alone and against its channel, (3) ask who served and who signed,
         with ONE LicenseManager call that checks and applies the credential's usage, (4) price
         it against the payer's escrow, (5) apply it, (6) net what it moves into runs; then (7)
         book the runs and pay the license revenue out. A voucher refused at any step is
         refused whole (`_rejected`) and the batch goes on.
         The per-voucher steps stay inline in this one loop, as labelled sections: an internal
         function on this path costs the copies of what it is handed (a voucher is 352 bytes)
         and its call, per voucher (measured: moving step 2 into a function that takes the
         voucher and returns its reject code costs ≈ 160 gas per voucher); the steps that run
         once per batch or once per run are functions of the modules.
    @param n The number of vouchers (checked non-zero, equal to the signatures).
    @param attested Whether the call carries TEE co-signatures (`ingest_attested`).
    @return uint256 How many vouchers were applied.
    """
    # The batch: the settings slot read once, where the arrays are, the epoch usage is booked in.
    config: uint256 = meter_fees.config
    fee_bps: uint256 = config >> meter_fees.FEE_AT
    pool: address = meter_fees.pool_of(config)
    domain: bytes32 = eip712_domain_separator._domain_separator_v4()
    vs_at: uint256 = meter_vouchers.array_at(4)
    sigs_at: uint256 = meter_vouchers.array_at(36)
    tees_at: uint256 = 0
    if attested:
        tees_at = meter_vouchers.array_at(68)
    # The vouchers and the signatures' offsets lie in calldata (an encoder always puts them there;
    # Vyper's decoding reads zeros past its end): else the arrays are longer than the call.
    calldata_end: uint256 = len(msg.data)
    assert (
        unsafe_add(vs_at, unsafe_mul(n, meter_vouchers.VOUCHER_SIZE)) <= calldata_end
        and unsafe_add(sigs_at, unsafe_mul(n, 32)) <= calldata_end
        and unsafe_add(tees_at, unsafe_mul(n, 32)) <= calldata_end
    ), "meter: length mismatch"
    epoch: uint256 = (block.timestamp - genesis) // epoch_length
    # The runs of step 6 (a node's earnings and usage in one token, the fees in one token, a
    # capsule's revenue in one token), the payout entries, the last `serves` answer.
    run_node: address = empty(address)
    run_token: address = empty(address)
    run_amount: uint256 = 0
    run_calls: uint256 = 0
    run_fail: uint256 = 0
    run_lat: uint256 = 0
    run_mu: uint256 = 0
    run_failed: uint256 = 0
    fee_token: address = empty(address)
    fee_amount: uint256 = 0
    cap_id: uint256 = 0
    cap_token: address = empty(address)
    cap_amount: uint256 = 0
    caps: DynArray[meter_payout.CapsuleAgg, meter_payout.MAX_CAPS] = []
    last_node: address = empty(address)
    last_at: uint256 = 0
    last_serves: bool = False
    applied: uint256 = 0
    for i: uint256 in range(n, bound=MAX_BATCH):
        # (1) Read the voucher where it is.
        encoded: Bytes[352] = slice(
            msg.data, unsafe_add(vs_at, unsafe_mul(i, meter_vouchers.VOUCHER_SIZE)), meter_vouchers.VOUCHER_SIZE
        )
        v: IUsageMeter.Voucher = abi_decode(encoded, IUsageMeter.Voucher)

        # (2) Checks on the voucher alone, then against its channel: who settles, when, the
        #     counters' widths, something new and nothing decreased.
        if v.node != msg.sender and not meter_nodes.operators[v.node][msg.sender]:
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
        channel: bytes32 = meter_channels.key(v.credential_id, v.node, v.payer)
        packed: uint256 = meter_channels.channel[channel]
        s_mu: uint256 = packed >> meter_channels.MU_AT
        s_calls: uint256 = (packed >> meter_channels.CALLS_AT) & masks.MASK48
        s_fail: uint256 = (packed >> meter_channels.FAILURES_AT) & masks.MASK40
        s_lat: uint256 = (packed >> meter_channels.LATENCY_AT) & masks.MASK48
        if v.cumulative_mu <= s_mu and c_calls <= s_calls and c_fail <= s_fail and c_lat <= s_lat:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_NOTHING_NEW)
            continue
        if v.cumulative_mu < s_mu or c_calls < s_calls or c_fail < s_fail or c_lat < s_lat:
            self._rejected(n, v.credential_id, v.node, v.payer, reasons.R_COUNTER_DECREASED)
            continue
        d_mu: uint256 = unsafe_sub(v.cumulative_mu, s_mu)

        # (3) Who served and who signed, all judged at `issued_at`: AccessStaking `serves` (asked
        #     once per (node, issued_at) in a row), the signature (recovered first: no state
        #     needed), then ONE LicenseManager call that checks holder, validity, quota, rate
        #     and scope, applies the MU and returns the price. From here on a refusal calls
        #     `unconsume`, which restores the credential exactly.
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
        digest: bytes32 = meter_vouchers.digest_of(domain, encoded)
        signer: address = meter_vouchers.recover_at(digest, sigs_at, i)
        chk: ILicenseManager.UsageCheck = extcall ILicenseManager(license_manager).consume(
            v.credential_id, d_mu, v.purpose, at, v.payer
        )
        if chk.status != 0:
            self._rejected(n, v.credential_id, v.node, v.payer, chk.status)
            continue
        code: uint8 = 0
        if signer != v.payer or signer == empty(address):
            if not meter_vouchers.delegate_at(v.payer, signer, at):
                code = reasons.R_BAD_SIGNATURE
        if code == 0 and chk.scope & scopes.SCOPE_TEE_REQUIRED != 0:
            if not attested or not meter_vouchers.tee_signed(
                pool, v.node, meter_vouchers.recover_at(digest, tees_at, i)
            ):
                code = reasons.R_TEE_SIGNATURE_MISSING

        # (4) Price: delta_mu * (terms price + node price), checked, against the payer's escrow.
        license_part: uint256 = d_mu * chk.price_per_mu  # price < 2**128, d_mu < 2**80: fits
        node_part: uint256 = unsafe_mul(d_mu, v.node_price_per_mu)  # checked in step 3
        total: uint256 = 0  # the sum is checked: it may not fit
        if node_part > max_value(uint256) - license_part:
            if code == 0:
                code = reasons.R_PRICE_OVERFLOW
        else:
            total = unsafe_add(license_part, node_part)
        bal: uint256 = meter_escrow.escrow[v.payer][chk.payment_token]
        if code == 0 and bal < total:
            code = reasons.R_ESCROW_SHORT
        if code != 0:
            if d_mu != 0:
                extcall ILicenseManager(license_manager).unconsume(v.credential_id)
            self._rejected(n, v.credential_id, v.node, v.payer, code)
            continue
        # (5) Effects of the voucher: the payer's escrow, the channel's counters, the event.
        meter_escrow.escrow[v.payer][chk.payment_token] = unsafe_sub(bal, total)
        meter_channels.channel[channel] = (
            (v.cumulative_mu << meter_channels.MU_AT)
            | (c_calls << meter_channels.CALLS_AT)
            | (c_fail << meter_channels.FAILURES_AT)
            | (c_lat << meter_channels.LATENCY_AT)
            | at
        )
        fee_l: uint256 = unsafe_div(license_part * fee_bps, meter_fees.BPS)
        fee_n: uint256 = unsafe_div(node_part * fee_bps, meter_fees.BPS)
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
            continue  # free vouchers move no money and no node's usage
        # (6) Net what it moves: consecutive vouchers of one (node, token), of one fee token and
        #     of one (capsule, token) add up here ("runs"); a node or fee run is booked when its
        #     key changes, a capsule run joins the payout entries.
        if v.node != run_node or chk.payment_token != run_token:
            if run_node != empty(address):
                meter_nodes.book(
                    run_node, run_token, run_amount, run_calls, run_fail, run_lat, run_mu, run_failed, epoch
                )
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
                meter_fees.fee_balance[fee_token] += fee_amount
            fee_token = chk.payment_token
            fee_amount = 0
        fee_amount += unsafe_add(fee_l, fee_n)
        if chk.capsule_id != cap_id or chk.payment_token != cap_token:
            if cap_amount != 0:
                caps = meter_payout.join(caps, cap_id, cap_token, cap_amount, router)
            cap_id = chk.capsule_id
            cap_token = chk.payment_token
            cap_amount = 0
        cap_amount += unsafe_sub(license_part, fee_l)
    # (7) Effects of the batch (the open runs), then its interactions: one transfer per token
    #     to the router, one `credit` per (capsule, token).
    if run_node != empty(address):
        meter_nodes.book(run_node, run_token, run_amount, run_calls, run_fail, run_lat, run_mu, run_failed, epoch)
    if fee_amount != 0:
        meter_fees.fee_balance[fee_token] += fee_amount
    if len(caps) == 0:
        meter_payout.pay_one(cap_id, cap_token, cap_amount, router)  # the usual batch: one (capsule, token)
    else:
        if cap_amount != 0:
            caps = meter_payout.join(caps, cap_id, cap_token, cap_amount, router)
        meter_payout.pay(caps, router)
    return applied


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
