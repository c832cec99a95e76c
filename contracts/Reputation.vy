# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Reputation: verified ratings and compliance audits of capsules
@custom:contract-name Reputation
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Owns two things: star ratings by consumers who really used a capsule, and
        compliance attestations by auditors.

        A rating is tied to a capability credential: only the credential's current holder may
        rate, only on the credential's capsule, only once the credential has metered usage
        (`mu_used > 0` in the LicenseManager), only if that usage was paid for (the terms
        charge something: `price_per_mu > 0` or `upfront_fee > 0`), and never once a
        revocation of the credential has taken effect. Weight: one paid credential, one
        rating; free credentials (price-0 terms, the sybil farm) cannot rate at all, so a
        "verified" rating costs at least the capsule's price. Each credential holds one
        rating; rating again replaces it and the capsule's aggregate moves by the difference,
        so `rating(capsule)` is always (sum of current stars, number of rating credentials).
        Every change logs `Rated` with the full new value, so an indexer rebuilds the
        aggregate from events alone: a `Rated` for a credential already seen replaces that
        credential's stars. Events are declared once, in `interfaces/IReputation.vyi`.

        An AUDITOR attests that a capsule passed (or failed) a standard until a date; the
        auditor or the admin may revoke the attestation.

        Example:
            reputation.rate(capsule_id, credential_id, 5, keccak256(review_json))
            sum, count = reputation.rating(capsule_id)       # average = sum / count
            aid = reputation.attest(capsule_id, keccak256("ISO-42001"), True, report_hash, until)
@custom:security Trusts the LicenseManager's `credential` and `terms` views for who may rate
        and on which capsule, and the CapsuleRegistry's `exists` for attestations. Holds no
        tokens and makes no state-changing external call.
@custom:kill Pausing stops `rate` and `attest`; it never stops `revoke_attestation` or reads.
        Pause reverts read "reputation: paused".
"""

from interfaces import ICapsuleRegistry
from interfaces import ILicenseManager
from interfaces import IReputation

implements: IReputation

from .modules import masks

from snekmate.auth import access_control

initializes: access_control

from snekmate.utils import pausable

initializes: pausable

exports: (
    # Roles (admin meant to be a timelock).
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    access_control.supportsInterface,
    pausable.paused,
)


# @dev Role that may attest compliance audits.
AUDITOR_ROLE: public(constant(bytes32)) = keccak256("AUDITOR")


# @dev Role that may pause rating and attesting.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev Lowest and highest star value.
MIN_STARS: public(constant(uint8)) = 1
MAX_STARS: public(constant(uint8)) = 5


# @dev Stored attestation: capsule, standard, report, and one packed word
#      (auditor 160 | valid_until 64 | passed 8 | revoked 8, from the low bits).
struct _Stored:
    capsule_id: uint256
    standard: bytes32
    report_hash: bytes32
    packed: uint256


# @dev The CapsuleRegistry whose capsules are rated and audited.
registry: public(immutable(address))


# @dev The LicenseManager whose credentials prove usage.
license_manager: public(immutable(address))


# @dev Per capsule: (sum of stars << 128) | number of ratings, in one slot.
_aggregate: HashMap[uint256, uint256]


# @dev Per credential: (capsule id << 8) | current stars (0 = not rated). Keeping the capsule
#      the credential was checked against spares the `terms` call on a re-rating.
_rated: HashMap[uint256, uint256]


# @dev Attestations by id (ids start at 1).
_attestations: HashMap[uint256, _Stored]


# @dev Number of attestations so far (the last id).
attestation_count: public(uint256)


@deploy
def __init__(registry_: address, license_manager_: address, admin_: address):
    """
    @dev Grants the admin, AUDITOR and PAUSER roles to `admin_` only and revokes the deployer's
         admin role (snekmate grants it first), so the RoleGranted / RoleRevoked events of
         this transaction show every role holder.
    @param registry_ The CapsuleRegistry.
    @param license_manager_ The LicenseManager.
    @param admin_ The governance address (meant to be a timelock).
    """
    access_control.__init__()
    pausable.__init__()
    assert admin_ != empty(address), "reputation: zero admin"
    assert registry_ != empty(address), "reputation: zero registry"
    assert license_manager_ != empty(address), "reputation: zero license manager"
    registry = registry_
    license_manager = license_manager_
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(AUDITOR_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)


@external
def rate(capsule_id: uint256, credential_id: uint256, stars: uint8, review_hash: bytes32):
    """
    @dev Rates `capsule_id` through a used, paid credential; rating again replaces the stars.
    @notice The caller must hold `credential_id`; the credential must be on `capsule_id`, have
            metered usage (`mu_used > 0`) under terms that charge (`price_per_mu > 0` or
            `upfront_fee > 0`), and no revocation of it may have taken effect.
    @param capsule_id The capsule.
    @param credential_id The caller's credential on the capsule.
    @param stars 1..5.
    @param review_hash Hash of an off-chain review (zero for none).
    """
    assert not pausable.paused, "reputation: paused"
    assert stars >= MIN_STARS and stars <= MAX_STARS, "reputation: stars out of range"
    c: ILicenseManager.Credential = staticcall ILicenseManager(license_manager).credential(credential_id)
    assert c.holder != empty(address), "reputation: unknown credential"
    assert c.holder == msg.sender, "reputation: not holder"
    assert c.revoked_at == 0 or convert(c.revoked_at, uint256) > block.timestamp, "reputation: credential revoked"
    assert c.mu_used > 0, "reputation: no usage"
    rated: uint256 = self._rated[credential_id]
    previous: uint256 = rated & 255
    # A re-rating on the capsule already checked skips the terms call: terms never change.
    if previous == 0 or rated >> 8 != capsule_id:
        t: ILicenseManager.Terms = staticcall ILicenseManager(license_manager).terms(c.terms_id)
        assert t.capsule_id == capsule_id, "reputation: wrong capsule"
        assert t.price_per_mu > 0 or t.upfront_fee > 0, "reputation: no paid usage"

    agg: uint256 = self._aggregate[capsule_id]
    total: uint256 = (agg >> 128) + convert(stars, uint256) - previous
    count: uint256 = agg & masks.MASK128
    if previous == 0:
        count += 1
    self._aggregate[capsule_id] = (total << 128) | count
    self._rated[credential_id] = (capsule_id << 8) | convert(stars, uint256)
    log IReputation.Rated(
        capsule_id=capsule_id, credential_id=credential_id, rater=msg.sender, stars=stars, review_hash=review_hash
    )


@external
def attest(capsule_id: uint256, standard: bytes32, passed: bool, report_hash: bytes32, valid_until: uint64) -> uint256:
    """
    @dev Records a compliance audit of `capsule_id` (AUDITOR).
    @param capsule_id The audited capsule (must exist).
    @param standard What was audited against, e.g. keccak256("ISO-42001").
    @param passed Whether the capsule passed.
    @param report_hash Hash of the audit report.
    @param valid_until Unix time the attestation expires (0 = no expiry).
    @return uint256 The attestation id.
    """
    assert not pausable.paused, "reputation: paused"
    access_control._check_role(AUDITOR_ROLE, msg.sender)
    assert staticcall ICapsuleRegistry(registry).exists(capsule_id), "reputation: unknown capsule"
    assert standard != empty(bytes32), "reputation: empty standard"
    assert valid_until == 0 or convert(valid_until, uint256) > block.timestamp, "reputation: already expired"
    attestation_id: uint256 = self.attestation_count + 1
    self.attestation_count = attestation_id
    self._attestations[attestation_id] = _Stored(
        capsule_id=capsule_id,
        standard=standard,
        report_hash=report_hash,
        packed=self._pack(msg.sender, valid_until, passed, False),
    )
    log IReputation.Attested(
        attestation_id=attestation_id,
        capsule_id=capsule_id,
        auditor=msg.sender,
        standard=standard,
        passed=passed,
        report_hash=report_hash,
        valid_until=valid_until,
    )
    return attestation_id


@external
def revoke_attestation(attestation_id: uint256):
    """
    @dev Revokes an attestation (its auditor, or the admin). Works while paused.
    @param attestation_id The attestation.
    """
    packed: uint256 = self._attestations[attestation_id].packed
    auditor: address = self._auditor(packed)
    assert auditor != empty(address), "reputation: unknown attestation"
    assert packed >> 232 == 0, "reputation: already revoked"
    assert (
        msg.sender == auditor or access_control.hasRole[access_control.DEFAULT_ADMIN_ROLE][msg.sender]
    ), "reputation: not auditor"
    self._attestations[attestation_id].packed = packed | (1 << 232)
    log IReputation.AttestationRevoked(attestation_id=attestation_id)


@external
def pause():
    """
    @dev Stops rating and attesting (PAUSER).
    @notice Reverts "reputation: paused" when already paused.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    assert not pausable.paused, "reputation: paused"
    pausable._pause()


@external
def unpause():
    """
    @dev Resumes rating and attesting (PAUSER).
    @notice Reverts "reputation: not paused" when not paused.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    assert pausable.paused, "reputation: not paused"
    pausable._unpause()


@external
@view
def rating(capsule_id: uint256) -> (uint256, uint256):
    """
    @dev A capsule's verified rating aggregate.
    @param capsule_id The capsule.
    @return uint256 The sum of the current stars.
    @return uint256 The number of credentials that rated it.
    """
    agg: uint256 = self._aggregate[capsule_id]
    return agg >> 128, agg & masks.MASK128


@external
@view
def attestation(attestation_id: uint256) -> IReputation.Attestation:
    """
    @dev One attestation (all zero if unknown).
    @param attestation_id The attestation.
    @return Attestation Its record.
    """
    return self._unpack(attestation_id)


@external
@view
def attestation_valid(attestation_id: uint256) -> bool:
    """
    @dev Whether an attestation is passed, not revoked and not expired now.
    @param attestation_id The attestation.
    @return bool True if it currently vouches for its capsule.
    """
    a: IReputation.Attestation = self._unpack(attestation_id)
    return (
        a.auditor != empty(address)
        and a.passed
        and not a.revoked
        and (a.valid_until == 0 or convert(a.valid_until, uint256) > block.timestamp)
    )


@external
@view
def stars_of(credential_id: uint256) -> uint8:
    """
    @dev The current stars of a credential's rating (0 = not rated).
    @param credential_id The credential.
    @return uint8 The stars.
    """
    return convert(self._rated[credential_id] & 255, uint8)


@internal
@pure
def _pack(auditor: address, valid_until: uint64, passed: bool, revoked: bool) -> uint256:
    """
    @dev Packs the small attestation fields into one word.
    @param auditor The auditor.
    @param valid_until The expiry (0 = none).
    @param passed Whether the audit passed.
    @param revoked Whether it was revoked.
    @return uint256 auditor | valid_until << 160 | passed << 224 | revoked << 232.
    """
    return (
        convert(convert(auditor, uint160), uint256)
        | (convert(valid_until, uint256) << 160)
        | (convert(passed, uint256) << 224)
        | (convert(revoked, uint256) << 232)
    )


@internal
@pure
def _auditor(packed: uint256) -> address:
    """
    @dev The auditor in a packed word.
    @param packed The packed word.
    @return address The auditor.
    """
    return convert(convert(packed & masks.MASK160, uint160), address)


@internal
@view
def _unpack(attestation_id: uint256) -> IReputation.Attestation:
    """
    @dev An attestation in its public shape.
    @param attestation_id The attestation.
    @return Attestation The record (all zero if unknown).
    """
    s: _Stored = self._attestations[attestation_id]
    return IReputation.Attestation(
        capsule_id=s.capsule_id,
        auditor=self._auditor(s.packed),
        standard=s.standard,
        passed=(s.packed >> 224) & 255 != 0,
        report_hash=s.report_hash,
        valid_until=convert((s.packed >> 160) & masks.MASK64, uint64),
        revoked=s.packed >> 232 != 0,
    )
