# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title LicenseManager terms book: publishing, packing and reading license terms
@custom:contract-name license_terms
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns the license terms of capsules: a capsule's current owner publishes immutable
        `Terms` (`create_terms`: identical terms share one id), opens or closes them for
        purchase (`set_terms_active`), and anyone reads them back (`terms`). Terms are packed
        into five words by reader (the layout below, one home: the credential and usage-rule
        modules read the words with this module's bit constants); field widths are checked
        by `_validate` with explicit reasons. Initialized by the LicenseManager deployable,
        used (`uses: license_terms`) by the credential module (the issued count of `d`, the
        revoked bit of `e`) and the usage-rule module (reads only).

        Example (exported by LicenseManager):
            tid = lm.create_terms(Terms(capsule_id=42, payment_token=usdc, price_per_mu=2_000, ...))
            lm.terms(tid).price_per_mu                  # 2_000
            lm.set_terms_active(tid, False)             # no new credentials; issued ones unaffected
@custom:security Only the capsule's current owner (CapsuleRegistry `ownerOf`) publishes or
        (de)activates terms; a terms' payment token must be one the revenue sink accepts.
        Holds no funds.
"""

from interfaces import ICapsuleRegistry
from interfaces import ILicenseManager
from interfaces import IRoyaltyRouter

from . import license_wiring

uses: license_wiring

from . import masks
from . import scopes


# @dev `Terms.revocation` bit: the capsule's current owner may revoke, effective after the notice period.
LICENSOR_AT_WILL: public(constant(uint8)) = 1


# @dev `Terms.revocation` bit: an ARBITER may revoke on breach, effective immediately.
ARBITER_ON_BREACH: public(constant(uint8)) = 2


# @dev Basis points in a whole.
_BPS: constant(uint16) = 10_000


# @dev Flag bits of the terms word `d`.
D_TRANSFERABLE: constant(uint256) = 1 << 200
D_ACTIVE: constant(uint256) = 1 << 201
D_EXISTS: constant(uint256) = 1 << 202


# @dev Flag bit of the terms word `b`: the terms have a quota or a rate (word `c` is needed).
B_LIMITS: constant(uint256) = 1 << 224


# @dev Flag bit of the terms word `b`: credentials are transferable (`_transfers` is needed).
B_TRANSFERABLE: constant(uint256) = 1 << 225


# @dev One credential more in the terms word `d` (issued count at bit 128).
D_ONE_ISSUED: constant(uint256) = 1 << 128


# @dev Bits of `e` (see PackedTerms).
E_DERIVABLE: constant(uint256) = 1 << 80
E_REVOKED: constant(uint256) = 1 << 192


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


# @dev Packed terms per terms id (ids start at 1).
_terms: HashMap[uint256, PackedTerms]


# @dev Terms id per keccak256(abi_encode(terms)): identical terms share one id.
_terms_by_hash: HashMap[bytes32, uint256]


@external
def create_terms(terms: ILicenseManager.Terms) -> uint256:
    """
    @dev Publishes immutable terms for a capsule (its current owner only).
    @notice Identical terms (same ABI encoding, so same capsule) return the existing id and
            log nothing. New terms start active.
    @param terms The terms (see DESIGN 3.3); widths are checked with explicit reasons.
    @return uint256 The terms id.
    """
    license_wiring._require_not_paused(license_wiring._globals)
    assert terms.capsule_id != 0 and terms.capsule_id <= masks.MASK64, "license: unknown capsule"
    assert staticcall ICapsuleRegistry(license_wiring.registry).state(terms.capsule_id) != 0, "license: unknown capsule"
    assert (
        staticcall ICapsuleRegistry(license_wiring.registry).ownerOf(terms.capsule_id) == msg.sender
    ), "license: not capsule owner"
    self._validate(terms)
    sink: address = convert(convert(license_wiring._globals & masks.MASK160, uint160), address)
    assert sink != empty(address), "license: not wired"
    assert staticcall IRoyaltyRouter(sink).token_allowed(terms.payment_token), "license: token not allowed"

    h: bytes32 = keccak256(abi_encode(terms))
    existing: uint256 = self._terms_by_hash[h]
    if existing != 0:
        return existing

    g: uint256 = license_wiring._globals
    terms_id: uint256 = (g >> 160) & masks.MASK40
    assert terms_id < masks.MASK40, "license: too many terms"
    license_wiring._globals = g + license_wiring.G_ONE_TERMS
    self._terms_by_hash[h] = terms_id

    limits: uint256 = 0
    if terms.mu_quota != 0 or terms.rate_mu != 0:
        limits = B_LIMITS
    e: uint256 = convert(terms.derivative_share_bps, uint256) | (convert(terms.notice_period, uint256) << 16)
    if terms.scope & scopes.SCOPE_DERIVATIVES != 0:
        e |= E_DERIVABLE | (terms.capsule_id << 96) | (convert(terms.duration, uint256) << 160)
    flags: uint256 = D_ACTIVE | D_EXISTS
    if terms.transferable:
        flags |= D_TRANSFERABLE
        limits |= B_TRANSFERABLE
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
    assert (
        staticcall ICapsuleRegistry(license_wiring.registry).ownerOf(capsule_id) == msg.sender
    ), "license: not capsule owner"
    if active:
        d |= D_ACTIVE
    else:
        d &= ~D_ACTIVE
    self._terms[terms_id].d = d
    log ILicenseManager.TermsActive(terms_id=terms_id, active=active)


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
        transferable=p.d & D_TRANSFERABLE != 0,
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
    return self._terms[terms_id].d & D_ACTIVE != 0


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
