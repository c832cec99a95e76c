# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title LicenseManager: CodexField license terms and capability credentials
@custom:contract-name LicenseManager
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Owns the license terms of capsules and the capability credentials bought under them.
        A capsule's current owner publishes immutable `Terms` (price per MU, upfront fee,
        duration, quota, rate, scope bits, derivative share, revocation rules, ...); anyone
        buys a credential (an ERC-721, soulbound per ERC-5192 unless the terms are
        transferable) for a holder; the UsageMeter asks `consume` once per voucher, judged at
        the voucher's `issued_at`; the CapsuleRegistry asks `can_derive` for a parent edge through a credential.

        Example:
            tid = lm.create_terms(Terms(capsule_id=42, payment_token=usdc, price_per_mu=2_000,
                                        upfront_fee=10_000_000, duration=30 * 86400, ...))
            usdc.approve(lm, 10_000_000)
            cred = lm.purchase(tid, me, 10_000_000)     # max_upfront protects the buyer
            lm.authorize(cred, me, SCOPE_RESEARCH, block.timestamp)  # True

        Rules (`at` is a unix time, see docs/licenses.md):
          valid        issued_at <= at < issued_at + duration (duration 0: perpetual), at < 2**40
          holder       the payer / user held the credential at `at` (a transferable credential
                       records its previous holder and the transfer time, and cannot be
                       transferred again within `settlement_window` of its last transfer, so
                       one previous holder covers every voucher still payable)
          not revoked  revoked_at == 0 or at < revoked_at (revoked_at: when revocation takes effect)
          in scope     purpose != 0 and purpose & ~scope == 0
          quota        mu_used + mu <= mu_quota (0: unlimited, but mu_used stays below 2**96)
          rate         fixed windows [issued_at + k * rate_period, +rate_period). A settlement
                       dated in window A, after the latest window W with recorded usage, may
                       use the unused allowance of every window from W to A (a cumulative
                       voucher covers calls served since the last settlement): at most
                       rate_mu - mu_in_W + rate_mu * (A - W) / rate_period; older windows are
                       filled first and only the excess is recorded in A. Usage dated in an
                       older window than W counts against W.
          check order  UNKNOWN_CREDENTIAL 4, EXPIRED 5, NOT_HOLDER 17, REVOKED 6,
                       PURPOSE_OUT_OF_SCOPE 9, QUOTA_EXCEEDED 7, RATE_EXCEEDED 8.

        Storage layout (gas): a credential lives in the ERC-721 owner slot (holder 160 |
        terms_id 56 | issued_at 40 in the 96-bit aux); its usage (mu_used 96 | window start 40
        | MU in window 80 | revocation effective time 40) is one slot written only by
        `consume` and `revoke`; terms are packed into five words by reader: `a` (purchase,
        usage), `b` and `c` (usage), `d` (purchase, transfers, revocation), `e` (derivatives,
        revocation). Field widths are checked by `create_terms` with explicit reasons. The
        revenue sink, both id counters and the paused bit share one slot (`_globals`) that
        `purchase` reads and writes anyway. Gas: docs/licenses.md.
@custom:security Trusts the CapsuleRegistry (immutable) for capsule owners and states, and the
        UsageMeter (to call `consume`) and the revenue sink (the RoyaltyRouter, to account the
        upfront fees it receives through `credit` and to say which tokens it accepts), both
        wired once by `wire` and never changeable: nothing governance can do redirects funds. Upfront
        fees go straight from the buyer to the sink; this contract never holds tokens. Tokens
        that deliver less than the fee (fee-on-transfer) are refused by a balance-delta check.
@custom:kill Pausing stops `create_terms` and `purchase` ("license: paused"). It never stops
        `consume` (usage already bought stays settleable), revocations, terms deactivation,
        transfers of transferable credentials, or reads.
"""

from ethereum.ercs import IERC165
from ethereum.ercs import IERC721
from ethereum.ercs import IERC20

from interfaces import ICapsuleRegistry
from interfaces import ILicenseManager
from interfaces import IRoyaltyRouter
from interfaces import IUsageMeter

implements: IERC165
implements: IERC721
implements: ILicenseManager

from snekmate.auth import access_control

initializes: access_control

# Pausing is a bit of `_globals` (read by `purchase` anyway), not snekmate's `pausable`
# module, whose separate storage slot would cost `purchase` a cold read (2,100 gas); the
# reasons and the `Paused` / `Unpaused` events are snekmate's.
from snekmate.utils import pausable

# @dev Bit masks of the packed words (one home: contracts/modules/masks.vy).
from .modules import masks
from .modules import erc721_lean

initializes: erc721_lean

from .modules import scopes
from .modules import reasons

exports: (
    # ERC-721 core without the module's transfers: `transferFrom` / `safeTransferFrom` are
    # defined here to refuse locked (ERC-5192) credentials. `supportsInterface` is defined here.
    erc721_lean.name,
    erc721_lean.symbol,
    erc721_lean.balanceOf,
    erc721_lean.ownerOf,
    erc721_lean.getApproved,
    erc721_lean.isApprovedForAll,
    erc721_lean.approve,
    erc721_lean.setApprovalForAll,
    # Roles (admin meant to be a timelock).
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
)


# @dev Role that may revoke credentials whose terms allow ARBITER_ON_BREACH (immediately).
ARBITER_ROLE: public(constant(bytes32)) = keccak256("ARBITER")


# @dev Role that may pause terms creation and purchases.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev `Terms.revocation` bit: the capsule's current owner may revoke, effective after the notice period.
LICENSOR_AT_WILL: public(constant(uint8)) = 1


# @dev `Terms.revocation` bit: an ARBITER may revoke on breach, effective immediately.
ARBITER_ON_BREACH: public(constant(uint8)) = 2


# @dev Status of `check_usage` / `consume` (codexfield/reasons.py): usage allowed.
OK: public(constant(uint8)) = reasons.R_OK


# @dev Status: no such credential.
UNKNOWN_CREDENTIAL: public(constant(uint8)) = reasons.R_UNKNOWN_CREDENTIAL


# @dev Status: `at` is outside [issued_at, expires_at) (or at or beyond 2**40).
EXPIRED: public(constant(uint8)) = reasons.R_EXPIRED


# @dev Status: `at` is at or after the revocation's effective time.
REVOKED: public(constant(uint8)) = reasons.R_REVOKED


# @dev Status: the MU would exceed the lifetime quota (or 2**96 - 1 MU without one).
QUOTA_EXCEEDED: public(constant(uint8)) = reasons.R_QUOTA_EXCEEDED


# @dev Status: the MU would exceed `rate_mu` in the current fixed rate window.
RATE_EXCEEDED: public(constant(uint8)) = reasons.R_RATE_EXCEEDED


# @dev Status: the purpose is 0 or claims bits outside the terms' scope.
PURPOSE_OUT_OF_SCOPE: public(constant(uint8)) = reasons.R_PURPOSE_OUT_OF_SCOPE


# @dev Status: the payer (user) did not hold the credential at `at`.
NOT_HOLDER: public(constant(uint8)) = reasons.R_NOT_HOLDER


# @dev Status: the capsule was FLAGGED (CapsuleRegistry `state_at`) at `at`.
CAPSULE_FLAGGED: public(constant(uint8)) = reasons.R_CAPSULE_FLAGGED


# @dev Capsule states that refuse new credentials (CapsuleRegistry).
_STATE_DISABLED: constant(uint8) = 3
_STATE_FLAGGED: constant(uint8) = 4


# @dev Basis points in a whole.
_BPS: constant(uint16) = 10_000


# @dev Flag bits of the terms word `d`.
_D_TRANSFERABLE: constant(uint256) = 1 << 200
_D_ACTIVE: constant(uint256) = 1 << 201
_D_EXISTS: constant(uint256) = 1 << 202


# @dev Flag bit of the terms word `b`: the terms have a quota or a rate (word `c` is needed).
_B_LIMITS: constant(uint256) = 1 << 224


# @dev Flag bit of the terms word `b`: credentials are transferable (`_transfers` is needed).
_B_TRANSFERABLE: constant(uint256) = 1 << 225


# @dev One credential more in the terms word `d` (issued count at bit 128).
_D_ONE_ISSUED: constant(uint256) = 1 << 128


# @dev One id more in `_globals` (next terms id at bit 160, next credential id at bit 200).
_G_ONE_TERMS: constant(uint256) = 1 << 160
_G_ONE_CREDENTIAL: constant(uint256) = 1 << 200


# @dev The paused bit of `_globals`.
_G_PAUSED: constant(uint256) = 1 << 255


# @dev Terms, packed by reader. a: payment_token 160 | capsule_id 64 | duration 32.
#      b: price_per_mu 128 | scope 64 | rate_period 32 | limits flag | transferable flag.
#      c: mu_quota 128 | rate_mu 128.
#      d: upfront_fee 128 | issued 32 | max_credentials 32 | revocation 8 | transferable | active | exists.
#      e: derivative_share_bps 16 | notice_period 64 | and, for terms whose scope has DERIVATIVES,
#         derivable 1 (bit 80) | capsule_id 64 (bit 96) | duration 32 (bit 160): a copy of what
#         `can_derive` needs, so a derivative check reads the credential's owner word and `e`
#         only | some credential revoked 1 (bit 192, set by `revoke`; only then does
#         `can_derive` read a credential's usage word).
struct PackedTerms:
    a: uint256
    b: uint256
    c: uint256
    d: uint256
    e: uint256
    meter: bytes32
    text_hash: bytes32


# @dev The CapsuleRegistry whose capsules are licensed here.
registry: public(immutable(address))


# @dev The UsageMeter's settlement window: a transferable credential cannot move again within it.
settlement_window: public(immutable(uint256))


# @dev The UsageMeter, the only caller of `consume` (zero until `wire`).
usage_meter: public(address)


# @dev Last transfer per transferable credential: previous holder 160 | transfer time 40.
_transfers: HashMap[uint256, uint256]


# @dev Per credential, the usage word (+ 1; 0: nothing to undo) that a `consume` of this
#      transaction replaced: `unconsume` can restore exactly that and nothing else
#      (transient storage: gone when the transaction ends).
_undo: transient(HashMap[uint256, uint256])


# @dev Capsule => unix time `at` => True once `consume` saw the capsule not FLAGGED at `at`, for
#      `at` before this block only: a state change is dated at its block, so the state at an
#      earlier time is final and a batch asks the CapsuleRegistry once per (capsule, issued_at)
#      (transient storage: gone when the transaction ends).
_not_flagged: transient(HashMap[uint256, HashMap[uint256, bool]])


# @dev Revenue sink 160 | next terms id 40 | next credential id 55 | paused 1 (one slot, read and
#      written by `purchase`).
_globals: uint256


# @dev Packed terms per terms id (ids start at 1).
_terms: HashMap[uint256, PackedTerms]


# @dev Terms id per keccak256(abi_encode(terms)): identical terms share one id.
_terms_by_hash: HashMap[bytes32, uint256]


# @dev Usage per credential: mu_used 96 | rate window start 40 | MU in window 80 | revoked_at 40.
_usage: HashMap[uint256, uint256]


# @dev Bits of `e` (see PackedTerms).
_E_DERIVABLE: constant(uint256) = 1 << 80
_E_REVOKED: constant(uint256) = 1 << 192


@deploy
def __init__(registry_: address, admin_: address, settlement_window_: uint256):
    """
    @dev Grants DEFAULT_ADMIN, PAUSER and ARBITER to `admin_` (meant to be a timelock) and
         renounces the deployer's admin role.
    @param registry_ The CapsuleRegistry.
    @param admin_ The governance address.
    @param settlement_window_ The UsageMeter's settlement window (`wire` checks they are equal).
    """
    access_control.__init__()
    erc721_lean.__init__("CodexField Credential", "CFCRED")
    assert registry_ != empty(address), "license: zero registry"
    assert admin_ != empty(address), "license: zero admin"
    assert settlement_window_ > 0 and settlement_window_ <= masks.MASK40, "license: bad settlement window"
    registry = registry_
    settlement_window = settlement_window_
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(ARBITER_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._globals = _G_ONE_TERMS | _G_ONE_CREDENTIAL


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """
    @dev ERC-165: ERC-165, ERC-721, ERC-721 metadata, ERC-5192, access control.
    @param interface_id The 4-byte interface identifier.
    @return bool Whether the interface is supported.
    """
    return interface_id in [0x01FFC9A7, 0x80AC58CD, 0x5B5E139F, 0xB45A3C0E, 0x7965DB0B]


@external
def create_terms(terms: ILicenseManager.Terms) -> uint256:
    """
    @dev Publishes immutable terms for a capsule (its current owner only).
    @notice Identical terms (same ABI encoding, so same capsule) return the existing id and
            log nothing. New terms start active.
    @param terms The terms (see DESIGN 3.3); widths are checked with explicit reasons.
    @return uint256 The terms id.
    """
    self._require_not_paused(self._globals)
    assert terms.capsule_id != 0 and terms.capsule_id <= masks.MASK64, "license: unknown capsule"
    assert staticcall ICapsuleRegistry(registry).state(terms.capsule_id) != 0, "license: unknown capsule"
    assert staticcall ICapsuleRegistry(registry).ownerOf(terms.capsule_id) == msg.sender, "license: not capsule owner"
    self._validate(terms)
    sink: address = convert(convert(self._globals & masks.MASK160, uint160), address)
    assert sink != empty(address), "license: not wired"
    assert staticcall IRoyaltyRouter(sink).token_allowed(terms.payment_token), "license: token not allowed"

    h: bytes32 = keccak256(abi_encode(terms))
    existing: uint256 = self._terms_by_hash[h]
    if existing != 0:
        return existing

    g: uint256 = self._globals
    terms_id: uint256 = (g >> 160) & masks.MASK40
    assert terms_id < masks.MASK40, "license: too many terms"
    self._globals = g + _G_ONE_TERMS
    self._terms_by_hash[h] = terms_id

    limits: uint256 = 0
    if terms.mu_quota != 0 or terms.rate_mu != 0:
        limits = _B_LIMITS
    e: uint256 = convert(terms.derivative_share_bps, uint256) | (convert(terms.notice_period, uint256) << 16)
    if terms.scope & scopes.SCOPE_DERIVATIVES != 0:
        e |= _E_DERIVABLE | (terms.capsule_id << 96) | (convert(terms.duration, uint256) << 160)
    flags: uint256 = _D_ACTIVE | _D_EXISTS
    if terms.transferable:
        flags |= _D_TRANSFERABLE
        limits |= _B_TRANSFERABLE
    self._terms[terms_id] = PackedTerms(
        a=convert(terms.payment_token, uint256) | (terms.capsule_id << 160) | (convert(terms.duration, uint256) << 224),
        b=terms.price_per_mu | (terms.scope << 128) | (convert(terms.rate_period, uint256) << 192) | limits,
        c=terms.mu_quota | (terms.rate_mu << 128),
        d=terms.upfront_fee
        | (convert(terms.max_credentials, uint256) << 160)
        | (convert(terms.revocation, uint256) << 192)
        | flags,
        e=e,
        meter=terms.meter,
        text_hash=terms.text_hash,
    )
    log ILicenseManager.TermsCreated(
        terms_id=terms_id,
        capsule_id=terms.capsule_id,
        payment_token=terms.payment_token,
        price_per_mu=terms.price_per_mu,
        upfront_fee=terms.upfront_fee,
        meter=terms.meter,
        duration=terms.duration,
        mu_quota=terms.mu_quota,
        rate_mu=terms.rate_mu,
        rate_period=terms.rate_period,
        scope=terms.scope,
        derivative_share_bps=terms.derivative_share_bps,
        revocation=terms.revocation,
        notice_period=terms.notice_period,
        max_credentials=terms.max_credentials,
        transferable=terms.transferable,
        text_hash=terms.text_hash,
    )
    return terms_id


@external
def set_terms_active(terms_id: uint256, active: bool):
    """
    @dev Opens or closes terms for purchase (the capsule's current owner). Credentials
         already issued are not affected.
    @param terms_id The terms.
    @param active Whether new credentials may be bought.
    """
    d: uint256 = self._terms[terms_id].d
    assert d != 0, "license: unknown terms"
    capsule_id: uint256 = (self._terms[terms_id].a >> 160) & masks.MASK64
    assert staticcall ICapsuleRegistry(registry).ownerOf(capsule_id) == msg.sender, "license: not capsule owner"
    if active:
        d |= _D_ACTIVE
    else:
        d &= ~_D_ACTIVE
    self._terms[terms_id].d = d
    log ILicenseManager.TermsActive(terms_id=terms_id, active=active)


@external
def purchase(terms_id: uint256, holder: address, max_upfront: uint256) -> uint256:
    """
    @dev Mints a credential under `terms_id` to `holder`; the caller pays the upfront fee,
         which goes to the revenue sink (RoyaltyRouter) as revenue of the capsule.
    @notice Approve the fee to this contract first. `max_upfront` is the buyer's protection:
            the purchase reverts if the terms' upfront fee is above it.
    @param terms_id The terms to buy under (active, capsule neither DISABLED nor FLAGGED).
    @param holder The credential's holder (the ERC-721 owner).
    @param max_upfront The most the caller accepts to pay upfront.
    @return uint256 The credential id.
    """
    g: uint256 = self._globals
    self._require_not_paused(g)
    d: uint256 = self._terms[terms_id].d
    assert d != 0, "license: unknown terms"
    assert d & _D_ACTIVE != 0, "license: terms inactive"
    a: uint256 = self._terms[terms_id].a
    capsule_id: uint256 = (a >> 160) & masks.MASK64
    state: uint8 = staticcall ICapsuleRegistry(registry).state(capsule_id)
    assert state != _STATE_DISABLED, "license: capsule disabled"
    assert state != _STATE_FLAGGED, "license: capsule flagged"
    issued: uint256 = (d >> 128) & masks.MASK32
    max_credentials: uint256 = (d >> 160) & masks.MASK32
    assert issued < masks.MASK32 and (max_credentials == 0 or issued < max_credentials), "license: sold out"
    fee: uint256 = d & masks.MASK128
    assert fee <= max_upfront, "license: upfront above max"
    assert holder != empty(address), "license: zero holder"

    credential_id: uint256 = (g >> 200) & masks.MASK55
    assert credential_id < masks.MASK55, "license: too many credentials"
    self._globals = g + _G_ONE_CREDENTIAL
    self._terms[terms_id].d = d + _D_ONE_ISSUED
    erc721_lean._mint(holder, credential_id, terms_id | (block.timestamp << 56))
    duration: uint256 = a >> 224
    expires_at: uint256 = 0
    if duration != 0:
        expires_at = block.timestamp + duration
    if d & _D_TRANSFERABLE == 0:
        log ILicenseManager.Locked(tokenId=credential_id)
    else:
        log ILicenseManager.Unlocked(tokenId=credential_id)
    log ILicenseManager.CredentialIssued(
        credential_id=credential_id,
        terms_id=terms_id,
        capsule_id=capsule_id,
        holder=holder,
        expires_at=convert(expires_at, uint64),
    )

    if fee != 0:
        token: address = convert(convert(a & masks.MASK160, uint160), address)
        sink: address = convert(convert(g & masks.MASK160, uint160), address)
        assert sink != empty(address), "license: no revenue sink"
        before: uint256 = staticcall IERC20(token).balanceOf(sink)
        assert extcall IERC20(token).transferFrom(
            msg.sender, sink, fee, default_return_value=True
        ), "license: payment failed"
        assert staticcall IERC20(token).balanceOf(sink) == before + fee, "license: fee-on-transfer token"
        extcall IRoyaltyRouter(sink).credit(capsule_id, token, fee)
    return credential_id


@external
def revoke(credential_id: uint256, reason: bytes32):
    """
    @dev Revokes a credential as its terms allow: an ARBITER immediately (ARBITER_ON_BREACH),
         the capsule's current owner after the notice period (LICENSOR_AT_WILL).
    @notice Usage dated before the effective time stays authorised and payable. A second
            revocation may only bring the effective time earlier. Never paused.
    @param credential_id The credential.
    @param reason A short reason (a dispute id, a hash of the ruling or notice).
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(credential_id)
    assert owner != empty(address), "license: unknown credential"
    terms_id: uint256 = aux & masks.MASK56
    revocation: uint256 = (self._terms[terms_id].d >> 192) & 255
    assert revocation != 0, "license: irrevocable"

    is_arbiter: bool = access_control.hasRole[ARBITER_ROLE][msg.sender]
    effective: uint256 = 0
    if is_arbiter and revocation & convert(ARBITER_ON_BREACH, uint256) != 0:
        effective = block.timestamp
    else:
        capsule_id: uint256 = (self._terms[terms_id].a >> 160) & masks.MASK64
        if msg.sender == staticcall ICapsuleRegistry(registry).ownerOf(capsule_id):
            assert revocation & convert(LICENSOR_AT_WILL, uint256) != 0, "license: not revocable by licensor"
            effective = block.timestamp + ((self._terms[terms_id].e >> 16) & masks.MASK64)
        else:
            assert not is_arbiter, "license: not revocable by arbiter"
            raise "license: not revoker"
    usage: uint256 = self._usage[credential_id]
    current: uint256 = usage >> 216
    assert current == 0 or effective < current, "license: already revoked"
    self._usage[credential_id] = (usage & masks.MASK216) | (effective << 216)
    e: uint256 = self._terms[terms_id].e
    if e & (_E_DERIVABLE | _E_REVOKED) == _E_DERIVABLE:
        self._terms[terms_id].e = e | _E_REVOKED  # from now on `can_derive` reads usage words
    log ILicenseManager.CredentialRevoked(
        credential_id=credential_id, by=msg.sender, reason=reason, effective_at=convert(effective, uint64)
    )


@external
@view
def authorize(credential_id: uint256, user: address, purpose: uint256, at: uint256) -> bool:
    """
    @dev Whether `user` may use the credential for `purpose` at time `at`: the user held it
         at `at`, the credential is valid and not revoked at `at`, the purpose is non-zero and
         in scope, and the quota is not exhausted. The rate window is a settlement matter.
    @param credential_id The credential.
    @param user The would-be user.
    @param purpose The scope bits the use claims.
    @param at The unix time of the use.
    @return bool True if authorised.
    """
    res: ILicenseManager.UsageCheck = empty(ILicenseManager.UsageCheck)
    new_usage: uint256 = 0
    old_usage: uint256 = 0
    # One MU: the quota is exhausted when not even one more MU fits.
    res, new_usage, old_usage = self._check(credential_id, 1, purpose, at, False, user, True)
    return res.status == OK


@external
@view
def can_derive(credential_id: uint256, holder: address, capsule_id: uint256, share_bps: uint16) -> bool:
    """
    @dev Whether `holder` may mint a child of `capsule_id` through `credential_id` with
         `share_bps`: holder holds it, it is for that capsule, its scope has DERIVATIVES, the
         share is at least the terms' derivative share, and it is valid and not revoked now.
         Reads only this contract (the CapsuleRegistry refuses a FLAGGED parent itself).
    @param credential_id The credential.
    @param holder The minter.
    @param capsule_id The parent capsule.
    @param share_bps The parent's royalty share in the child.
    @return bool True if allowed.
    """
    return self._can_derive(credential_id, holder, capsule_id, share_bps)


@external
@view
def can_derive_many(holder: address, derivations: DynArray[ILicenseManager.Derivation, 8]) -> bool:
    """
    @dev Whether `holder` may take every edge of `derivations` (`can_derive` for each), in
         one call: what the CapsuleRegistry's `mint` asks for the parents the minter does
         not own, under its own lock.
    @param holder The minter.
    @param derivations Up to 8 (credential, parent capsule, share) edges.
    @return bool True if every edge is allowed (true for none).
    """
    for d: ILicenseManager.Derivation in derivations:
        if not self._can_derive(d.credential_id, holder, d.capsule_id, d.share_bps):
            return False
    return True


@external
@view
def check_usage(
    credential_id: uint256, mu: uint256, purpose: uint256, at: uint256, payer: address
) -> ILicenseManager.UsageCheck:
    """
    @dev What `consume` would answer for one voucher, without applying it.
    @param credential_id The credential.
    @param mu The MU to settle.
    @param purpose The scope bits the voucher claims.
    @param at The unix time the usage is dated (the voucher's `issued_at`).
    @param payer Who pays (must have held the credential at `at`).
    @return UsageCheck status (0 OK or a reason code), holder at `at`, capsule_id,
            payment_token, price_per_mu, scope (zeros for an unknown credential).
    """
    res: ILicenseManager.UsageCheck = empty(ILicenseManager.UsageCheck)
    new_usage: uint256 = 0
    old_usage: uint256 = 0
    res, new_usage, old_usage = self._check(credential_id, mu, purpose, at, True, payer, True)
    return res


@external
@reentrant
def consume(
    credential_id: uint256, mu: uint256, purpose: uint256, at: uint256, payer: address
) -> ILicenseManager.UsageCheck:
    """
    @dev Applies `mu` to the credential's quota and rate window if `check_usage` would say
         OK, and returns what `check_usage` returns, so the UsageMeter prices, authorises and
         records one voucher in ONE call; otherwise changes nothing. Never reverts on a usage
         failure (a batch goes on). Not paused: usage already bought stays settleable.
    @notice If the meter then refuses the voucher (signature, escrow), it calls `unconsume`
            in the same transaction to restore the previous usage word exactly.
            `@reentrant` on purpose: only the UsageMeter may call it (itself nonreentrant),
            and it makes no external call, so a lock would only cost gas on the hot path.
    @param credential_id The credential.
    @param mu The MU to settle.
    @param purpose The scope bits the voucher claims.
    @param at The unix time the usage is dated (the voucher's `issued_at`).
    @param payer Who pays (must have held the credential at `at`).
    @return UsageCheck status (0 OK or the reason code) and the pricing data.
    """
    assert msg.sender == self.usage_meter, "license: not meter"
    res: ILicenseManager.UsageCheck = empty(ILicenseManager.UsageCheck)
    new_usage: uint256 = 0
    previous: uint256 = 0  # the usage word, read once (in `_check`)
    res, new_usage, previous = self._check(credential_id, mu, purpose, at, True, payer, True)
    if res.status == OK:
        if mu != 0:
            self._usage[credential_id] = new_usage
            self._undo[credential_id] = previous + 1  # revoked_at < 2**40 keeps `previous` < 2**256 - 1
        if at < block.timestamp and not self._not_flagged[res.capsule_id][at]:
            self._not_flagged[res.capsule_id][at] = True
    return res


@external
@reentrant
def unconsume(credential_id: uint256):
    """
    @dev Undoes the last `consume` of this transaction on `credential_id` (UsageMeter only):
         restores the usage word it replaced, nothing else.
    @param credential_id The credential the last `consume` applied to.
    """
    assert msg.sender == self.usage_meter, "license: not meter"
    word: uint256 = self._undo[credential_id]
    assert word != 0, "license: nothing to undo"
    self._usage[credential_id] = word - 1
    self._undo[credential_id] = 0


@external
@view
def credential(credential_id: uint256) -> ILicenseManager.Credential:
    """
    @dev A credential's record.
    @param credential_id The credential.
    @return Credential terms_id, holder, issued_at, expires_at (0: perpetual), mu_used,
            revoked_at (when the revocation takes effect; 0: none).
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(credential_id)
    assert owner != empty(address), "license: unknown credential"
    terms_id: uint256 = aux & masks.MASK56
    issued_at: uint256 = aux >> 56
    duration: uint256 = self._terms[terms_id].a >> 224
    expires_at: uint256 = 0
    if duration != 0:
        expires_at = issued_at + duration
    usage: uint256 = self._usage[credential_id]
    return ILicenseManager.Credential(
        terms_id=terms_id,
        holder=owner,
        issued_at=convert(issued_at, uint64),
        expires_at=convert(expires_at, uint64),
        mu_used=usage & masks.MASK96,
        revoked_at=convert(usage >> 216, uint64),
    )


@external
@view
def rate_window(credential_id: uint256) -> (uint64, uint256):
    """
    @dev The credential's current rate window as last recorded by `consume`.
    @param credential_id The credential.
    @return uint64 The window's start (0: none yet).
    @return uint256 The MU settled in it.
    """
    usage: uint256 = self._usage[credential_id]
    return convert((usage >> 96) & masks.MASK40, uint64), (usage >> 136) & masks.MASK80


@external
@view
def terms(terms_id: uint256) -> ILicenseManager.Terms:
    """
    @dev The terms, as created.
    @param terms_id The terms.
    @return Terms Every field (DESIGN 3.3 order).
    """
    p: PackedTerms = self._terms[terms_id]
    assert p.d != 0, "license: unknown terms"
    return ILicenseManager.Terms(
        capsule_id=(p.a >> 160) & masks.MASK64,
        payment_token=convert(convert(p.a & masks.MASK160, uint160), address),
        price_per_mu=p.b & masks.MASK128,
        upfront_fee=p.d & masks.MASK128,
        meter=p.meter,
        duration=convert(p.a >> 224, uint64),
        mu_quota=p.c & masks.MASK128,
        rate_mu=p.c >> 128,
        rate_period=convert((p.b >> 192) & masks.MASK32, uint64),
        scope=(p.b >> 128) & masks.MASK64,
        derivative_share_bps=convert(p.e & masks.MASK16, uint16),
        revocation=convert((p.d >> 192) & 255, uint8),
        notice_period=convert((p.e >> 16) & masks.MASK64, uint64),
        max_credentials=convert((p.d >> 160) & masks.MASK32, uint32),
        transferable=p.d & _D_TRANSFERABLE != 0,
        text_hash=p.text_hash,
    )


@external
@view
def terms_active(terms_id: uint256) -> bool:
    """
    @dev Whether the terms are open for purchase.
    @param terms_id The terms.
    @return bool True if active (false for unknown terms).
    """
    return self._terms[terms_id].d & _D_ACTIVE != 0


@external
@view
def credentials_issued(terms_id: uint256) -> uint256:
    """
    @dev How many credentials were bought under `terms_id` (counts against max_credentials).
    @param terms_id The terms.
    @return uint256 The count.
    """
    return (self._terms[terms_id].d >> 128) & masks.MASK32


@external
@view
def terms_id_of(terms: ILicenseManager.Terms) -> uint256:
    """
    @dev The id of terms identical to `terms`, 0 if none were created.
    @param terms The terms.
    @return uint256 The terms id or 0.
    """
    return self._terms_by_hash[keccak256(abi_encode(terms))]


@external
@view
def locked(token_id: uint256) -> bool:
    """
    @dev ERC-5192: whether the credential is soulbound (its terms are not transferable).
    @param token_id The credential.
    @return bool True if locked.
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(token_id)
    assert owner != empty(address), "license: unknown credential"
    return self._terms[aux & masks.MASK56].d & _D_TRANSFERABLE == 0


@external
@payable
def transferFrom(owner: address, to: address, token_id: uint256):
    """
    @dev ERC-721 transfer of a transferable credential (its usage state moves with it; vouchers
         the previous holder signed before now stay payable from its escrow).
    @notice Refused within `settlement_window` of the credential's previous transfer.
    @param owner The 20-byte current holder.
    @param to The 20-byte receiver.
    @param token_id The credential.
    """
    self._before_transfer(owner, token_id)
    erc721_lean._transfer_checked(msg.sender, owner, to, token_id)


@external
@payable
def safeTransferFrom(owner: address, to: address, token_id: uint256, data: Bytes[1_024] = b""):
    """
    @dev ERC-721 safe transfer of a transferable credential.
    @param owner The 20-byte current holder.
    @param to The 20-byte receiver.
    @param token_id The credential.
    @param data Data passed to `onERC721Received`.
    """
    self._before_transfer(owner, token_id)
    erc721_lean._transfer_checked(msg.sender, owner, to, token_id)
    erc721_lean._check_on_erc721_received(owner, to, token_id, data)


@external
@view
def tokenURI(token_id: uint256) -> String[512]:
    """
    @dev An on-chain JSON document describing the credential.
    @param token_id The credential.
    @return String A `data:application/json;utf8,` URI.
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(token_id)
    assert owner != empty(address), "license: unknown credential"
    terms_id: uint256 = aux & masks.MASK56
    issued_at: uint256 = aux >> 56
    a: uint256 = self._terms[terms_id].a
    expires_at: uint256 = 0
    if a >> 224 != 0:
        expires_at = issued_at + (a >> 224)
    return concat(
        'data:application/json;utf8,{"name":"CodexField credential #',
        uint2str(token_id),
        '","terms_id":',
        uint2str(terms_id),
        ',"capsule_id":',
        uint2str((a >> 160) & masks.MASK64),
        ',"issued_at":',
        uint2str(issued_at),
        ',"expires_at":',
        uint2str(expires_at),
        "}",
    )


@external
def wire(usage_meter_: address, revenue_sink_: address):
    """
    @dev Wires the UsageMeter (the only caller of `consume`) and the revenue sink (the
         RoyaltyRouter: receives upfront fees through `credit`, says which tokens terms may
         use), once (admin); they can never change afterwards.
    @param usage_meter_ The UsageMeter (its settlement window must equal this contract's).
    @param revenue_sink_ The RoyaltyRouter.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self.usage_meter == empty(address), "license: already wired"
    assert usage_meter_ != empty(address) and revenue_sink_ != empty(address), "license: zero address"
    if usage_meter_.is_contract:  # the credential transfer cooldown must cover the meter's window
        assert staticcall IUsageMeter(usage_meter_).settlement_window() == settlement_window, "license: window mismatch"
    self.usage_meter = usage_meter_
    self._globals = (self._globals & ~masks.MASK160) | convert(revenue_sink_, uint256)
    log ILicenseManager.Wired(usage_meter=usage_meter_, revenue_sink=revenue_sink_)


@external
@view
def last_transfer(credential_id: uint256) -> (address, uint64):
    """
    @dev The holder before the credential's last transfer and when it happened (zeros: never).
    @param credential_id The credential.
    @return address The previous holder.
    @return uint64 The transfer time.
    """
    t: uint256 = self._transfers[credential_id]
    return convert(convert(t & masks.MASK160, uint160), address), convert(t >> 160, uint64)


@external
@view
def revenue_sink() -> address:
    """
    @dev Where upfront fees go (zero until wired).
    @return address The sink.
    """
    return convert(convert(self._globals & masks.MASK160, uint160), address)


@external
@view
def next_terms_id() -> uint256:
    """
    @dev The id the next new terms will get.
    @return uint256 The id.
    """
    return (self._globals >> 160) & masks.MASK40


@external
@view
def next_credential_id() -> uint256:
    """
    @dev The id the next credential will get.
    @return uint256 The id.
    """
    return (self._globals >> 200) & masks.MASK55


@external
@view
def paused() -> bool:
    """
    @dev Whether terms creation and purchases are paused.
    @return bool True if paused.
    """
    return self._globals & _G_PAUSED != 0


@external
def pause():
    """
    @dev Stops terms creation and purchases (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    g: uint256 = self._globals
    self._require_not_paused(g)
    self._globals = g | _G_PAUSED
    log pausable.Paused(account=msg.sender)


@external
def unpause():
    """
    @dev Resumes terms creation and purchases (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    g: uint256 = self._globals
    assert g & _G_PAUSED != 0, "license: not paused"
    self._globals = g & ~_G_PAUSED
    log pausable.Unpaused(account=msg.sender)


@internal
@view
def _check(
    credential_id: uint256,
    mu: uint256,
    purpose: uint256,
    at: uint256,
    check_rate: bool,
    payer: address,
    check_flag: bool,
) -> (ILicenseManager.UsageCheck, uint256, uint256):
    """
    @dev The usage rules (see the header) and the usage word `consume` would write.
    @param credential_id The credential.
    @param mu The MU to settle.
    @param purpose The scope bits claimed.
    @param at The unix time of the usage.
    @param check_rate Whether the rate window applies.
    @param payer Who must have held the credential at `at`.
    @param check_flag Whether to ask the CapsuleRegistry for a dispute flag at `at`. Every
           caller passes True since `can_derive_many` answers derivations without `_check`;
           the parameter stays because dropping it reorders the compiled code and measured
           ≈ 1k gas more per metered voucher (tests/gas/test_gas_meter.py).
    @return UsageCheck The status and pricing data.
    @return uint256 The new usage word (meaningful only when the status is OK).
    @return uint256 The usage word it replaces (meaningful only when the status is OK).
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(credential_id)
    if owner == empty(address):
        return ILicenseManager.UsageCheck(
            status=UNKNOWN_CREDENTIAL,
            holder=empty(address),
            capsule_id=0,
            payment_token=empty(address),
            price_per_mu=0,
            scope=0,
        ), 0, 0
    terms_id: uint256 = aux & masks.MASK56
    issued_at: uint256 = aux >> 56
    a: uint256 = self._terms[terms_id].a
    b: uint256 = self._terms[terms_id].b
    scope: uint256 = (b >> 128) & masks.MASK64
    res: ILicenseManager.UsageCheck = ILicenseManager.UsageCheck(
        status=OK,
        holder=owner,
        capsule_id=(a >> 160) & masks.MASK64,
        payment_token=convert(convert(a & masks.MASK160, uint160), address),
        price_per_mu=b & masks.MASK128,
        scope=scope,
    )
    duration: uint256 = a >> 224
    if at < issued_at or at > masks.MASK40 or (duration != 0 and at >= issued_at + duration):
        res.status = EXPIRED
        return res, 0, 0
    if b & _B_TRANSFERABLE != 0:
        t: uint256 = self._transfers[credential_id]
        if at < t >> 160:
            res.holder = convert(convert(t & masks.MASK160, uint160), address)
    if payer != res.holder:
        res.status = NOT_HOLDER
        return res, 0, 0
    usage: uint256 = self._usage[credential_id]
    revoked_at: uint256 = usage >> 216
    if revoked_at != 0 and at >= revoked_at:
        res.status = REVOKED
        return res, 0, 0
    # A dispute flag stops usage from the moment it is set; usage served before it stays payable.
    if (
        check_flag
        and not self._not_flagged[res.capsule_id][at]
        and staticcall ICapsuleRegistry(registry).state_at(res.capsule_id, at) == _STATE_FLAGGED
    ):
        res.status = CAPSULE_FLAGGED
        return res, 0, 0
    if purpose == 0 or purpose & ~scope != 0:
        res.status = PURPOSE_OUT_OF_SCOPE
        return res, 0, 0
    mu_used: uint256 = usage & masks.MASK96
    if mu > masks.MASK96 - mu_used:
        res.status = QUOTA_EXCEEDED
        return res, 0, 0
    window_start: uint256 = (usage >> 96) & masks.MASK40
    window_mu: uint256 = (usage >> 136) & masks.MASK80
    if b & _B_LIMITS != 0:
        c: uint256 = self._terms[terms_id].c
        quota: uint256 = c & masks.MASK128
        if quota != 0 and mu > quota - mu_used:
            res.status = QUOTA_EXCEEDED
            return res, 0, 0
        rate_mu: uint256 = c >> 128
        if check_rate and rate_mu != 0:
            period: uint256 = (b >> 192) & masks.MASK32
            start: uint256 = issued_at + (at - issued_at) // period * period
            if start > window_start:
                # Unused allowance of the windows from the latest recorded one up to `start`.
                older: uint256 = 0
                if window_start == 0:
                    older = rate_mu * ((start - issued_at) // period)
                else:
                    older = rate_mu - window_mu + rate_mu * ((start - window_start) // period - 1)
                if mu > older + rate_mu:
                    res.status = RATE_EXCEEDED
                    return res, 0, 0
                window_start = start
                window_mu = 0
                if mu > older:
                    window_mu = mu - older
            else:
                if mu > rate_mu - window_mu:
                    res.status = RATE_EXCEEDED
                    return res, 0, 0
                window_mu += mu
    return res, (mu_used + mu) | (window_start << 96) | (window_mu << 136) | (revoked_at << 216), usage


@internal
@view
def _can_derive(credential_id: uint256, holder: address, capsule_id: uint256, share_bps: uint16) -> bool:
    """
    @dev The derivative rule at `block.timestamp` (the usage rules of `_check` with MU 0 and
         purpose DERIVATIVES, at now: the holder now is the current owner, quota and rate do
         not apply): from the credential's owner word and the terms' `e` word only, plus the
         usage word once a credential of these terms was revoked.
    @param credential_id The credential.
    @param holder The minter (non-zero).
    @param capsule_id The parent capsule.
    @param share_bps The parent's royalty share in the child.
    @return bool True if allowed.
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(credential_id)
    if owner == empty(address) or owner != holder:
        return False
    e: uint256 = self._terms[aux & masks.MASK56].e
    if (
        e & _E_DERIVABLE == 0
        or (e >> 96) & masks.MASK64 != capsule_id
        or convert(share_bps, uint256) < e & masks.MASK16
    ):
        return False
    duration: uint256 = (e >> 160) & masks.MASK32
    if block.timestamp > masks.MASK40 or (duration != 0 and block.timestamp >= (aux >> 56) + duration):
        return False
    if e & _E_REVOKED != 0:
        revoked_at: uint256 = self._usage[credential_id] >> 216
        if revoked_at != 0 and block.timestamp >= revoked_at:
            return False
    return True


@internal
@pure
def _require_not_paused(g: uint256):
    """
    @dev Reverts if the paused bit of `g` (the `_globals` word) is set.
    @param g The `_globals` word.
    """
    assert g & _G_PAUSED == 0, "license: paused"


@internal
def _before_transfer(from_: address, token_id: uint256):
    """
    @dev Reverts if `token_id` is locked (ERC-5192) or moved less than `settlement_window` ago,
         and records its holder and now as its last transfer; unknown tokens and a wrong
         `from_` are left to the ERC-721 checks.
    @param from_ The holder the transfer moves the credential from (checked by ERC-721).
    @param token_id The credential.
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(token_id)
    if owner != empty(address):
        assert self._terms[aux & masks.MASK56].d & _D_TRANSFERABLE != 0, "license: credential locked"
        last: uint256 = self._transfers[token_id] >> 160
        assert last == 0 or block.timestamp >= last + settlement_window, "license: transfer cooldown"
        self._transfers[token_id] = convert(owner, uint256) | (block.timestamp << 160)


@internal
@pure
def _validate(terms: ILicenseManager.Terms):
    """
    @dev Checks the fields' meaning and that they fit the packed storage.
    @param terms The terms.
    """
    assert terms.payment_token != empty(address), "license: zero payment token"
    assert terms.price_per_mu <= masks.MASK128, "license: price too large"
    assert terms.upfront_fee <= masks.MASK128, "license: upfront too large"
    assert convert(terms.duration, uint256) <= masks.MASK32, "license: duration too long"
    assert terms.mu_quota <= masks.MASK96, "license: quota too large"
    assert terms.rate_mu <= masks.MASK80, "license: rate too large"
    assert convert(terms.rate_period, uint256) <= masks.MASK32, "license: rate period too long"
    assert terms.rate_mu == 0 or terms.rate_period != 0, "license: rate needs a period"
    assert terms.rate_mu != 0 or terms.rate_period == 0, "license: period needs a rate"
    assert terms.mu_quota == 0 or terms.rate_mu <= terms.mu_quota, "license: quota below rate"
    assert terms.scope <= masks.MASK64, "license: scope beyond 64 bits"
    assert terms.derivative_share_bps <= _BPS, "license: share above 100%"
    assert terms.revocation <= LICENSOR_AT_WILL | ARBITER_ON_BREACH, "license: bad revocation"
    assert convert(terms.notice_period, uint256) <= masks.MASK32, "license: notice too long"
