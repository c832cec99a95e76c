# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockMeterBatch: one `consume` per voucher, as the UsageMeter's batch does
@custom:contract-name MockMeterBatch
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Gas measurement helper for the LicenseManager's hot path. Test only.
"""

from interfaces import ILicenseManager


# @dev The LicenseManager.
lm: public(immutable(address))


# @dev The settlement window the LicenseManager's `wire` checks (the deployment default).
settlement_window: public(constant(uint256)) = 86_400


@deploy
def __init__(lm_: address):
    """
    @dev Sets the LicenseManager.
    @param lm_ The LicenseManager.
    """
    lm = lm_


@external
def run(credential_ids: DynArray[uint256, 64], mu: uint256, purpose: uint256, at: uint256, payer: address) -> uint256:
    """
    @dev For each credential: one `consume` (checks, applies, returns the pricing data).
    @param credential_ids The credentials.
    @param mu MU per credential.
    @param purpose The purpose bits.
    @param at The usage time.
    @param payer The payer (holder at `at`).
    @return uint256 How many were applied.
    """
    applied: uint256 = 0
    for cid: uint256 in credential_ids:
        if (extcall ILicenseManager(lm).consume(cid, mu, purpose, at, payer)).status == 0:
            applied += 1
    return applied
