# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockLicenseManager: settable `credential` and `terms` views for tests
@custom:contract-name MockLicenseManager
@license GNU Affero General Public License v3.0 only
@notice Answers the two LicenseManager views that Reputation reads; tests set them freely.
        Never deploy it outside tests.
"""

from interfaces import ILicenseManager


# @dev Credentials by id.
_credentials: HashMap[uint256, ILicenseManager.Credential]


# @dev Terms by id.
_terms: HashMap[uint256, ILicenseManager.Terms]


@deploy
def __init__():
    """
    @dev Nothing to set up.
    """
    pass


@external
def set_credential(credential_id: uint256, terms_id: uint256, holder: address, mu_used: uint256):
    """
    @dev Sets a credential.
    @param credential_id The credential.
    @param terms_id Its terms.
    @param holder Its holder.
    @param mu_used Its metered usage so far.
    """
    # Field by field, so the mock keeps compiling when the struct gains fields.
    self._credentials[credential_id].terms_id = terms_id
    self._credentials[credential_id].holder = holder
    self._credentials[credential_id].issued_at = 1
    self._credentials[credential_id].mu_used = mu_used


@external
def set_revoked_at(credential_id: uint256, revoked_at: uint64):
    """
    @dev Sets when a credential's revocation takes effect (0: none).
    @param credential_id The credential.
    @param revoked_at The time.
    """
    self._credentials[credential_id].revoked_at = revoked_at


@external
def set_terms_capsule(terms_id: uint256, capsule_id: uint256):
    """
    @dev Sets paid terms on a capsule: `price_per_mu = 1`, no upfront fee (other fields zero).
    @param terms_id The terms.
    @param capsule_id The capsule.
    """
    self._terms[terms_id].capsule_id = capsule_id
    self._terms[terms_id].price_per_mu = 1
    self._terms[terms_id].upfront_fee = 0


@external
def set_terms(terms_id: uint256, capsule_id: uint256, price_per_mu: uint256, upfront_fee: uint256):
    """
    @dev Sets the capsule and prices of a terms id (other fields zero).
    @param terms_id The terms.
    @param capsule_id The capsule.
    @param price_per_mu The price per metered unit.
    @param upfront_fee The upfront fee.
    """
    self._terms[terms_id].capsule_id = capsule_id
    self._terms[terms_id].price_per_mu = price_per_mu
    self._terms[terms_id].upfront_fee = upfront_fee


@external
@view
def credential(credential_id: uint256) -> ILicenseManager.Credential:
    """
    @dev The credential as set.
    @param credential_id The credential.
    @return Credential The record.
    """
    return self._credentials[credential_id]


@external
@view
def terms(terms_id: uint256) -> ILicenseManager.Terms:
    """
    @dev The terms as set.
    @param terms_id The terms.
    @return Terms The record.
    """
    return self._terms[terms_id]
