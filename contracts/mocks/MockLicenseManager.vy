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
    self._credentials[credential_id] = ILicenseManager.Credential(
        terms_id=terms_id, holder=holder, issued_at=1, expires_at=0, mu_used=mu_used, revoked_at=0
    )


@external
def set_terms_capsule(terms_id: uint256, capsule_id: uint256):
    """
    @dev Sets the capsule of a terms id (other fields stay zero).
    @param terms_id The terms.
    @param capsule_id The capsule.
    """
    self._terms[terms_id].capsule_id = capsule_id


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
