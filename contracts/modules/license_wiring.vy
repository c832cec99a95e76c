# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title LicenseManager wiring: the contracts it trusts, its id counters and its pause bit
@custom:contract-name license_wiring
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns what every other part of the LicenseManager reads: the CapsuleRegistry
        (immutable), the UsageMeter's settlement window (immutable), the UsageMeter and the
        revenue sink (the RoyaltyRouter), wired once by `wire` and never changeable, and one
        slot `_globals` = revenue sink 160 | next terms id 40 | next credential id 55 | paused 1,
        which `purchase` reads and writes anyway (so the pause check and both counters cost it
        no extra slot). Initialized by the LicenseManager deployable, used (`uses:
        license_wiring`) by the terms, credential and usage-rule modules.

        Example (exported by LicenseManager):
            lm.wire(meter, router, sender=admin)        # once; "license: already wired" after
            lm.pause(sender=pauser)                     # stops create_terms and purchase
@custom:security Holds no funds. `wire` runs once (admin) and checks that the UsageMeter's
        settlement window equals this contract's (the credential transfer cooldown must cover
        it); nothing governance can do afterwards redirects fees or the meter.
"""

from interfaces import ILicenseManager
from interfaces import IUsageMeter

from snekmate.auth import access_control

uses: access_control

# The reasons and the `Paused` / `Unpaused` events are snekmate's; its storage is not used
# (a separate slot would cost `purchase` a cold read: 2,100 gas).
from snekmate.utils import pausable

from . import masks


# @dev Role that may pause terms creation and purchases.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev Capsule states that refuse new credentials (CapsuleRegistry).
STATE_DISABLED: constant(uint8) = 3
STATE_FLAGGED: constant(uint8) = 4


# @dev One id more in `_globals` (next terms id at bit 160, next credential id at bit 200).
G_ONE_TERMS: constant(uint256) = 1 << 160
G_ONE_CREDENTIAL: constant(uint256) = 1 << 200


# @dev The paused bit of `_globals`.
G_PAUSED: constant(uint256) = 1 << 255


# @dev The CapsuleRegistry whose capsules are licensed here.
registry: public(immutable(address))


# @dev The UsageMeter's settlement window: a transferable credential cannot move again within it.
settlement_window: public(immutable(uint256))


# @dev The UsageMeter, the only caller of `consume` (zero until `wire`).
usage_meter: public(address)


# @dev Revenue sink 160 | next terms id 40 | next credential id 55 | paused 1 (one slot, read and
#      written by `purchase`).
_globals: uint256


@deploy
def __init__(registry_: address, settlement_window_: uint256):
    """
    @dev Sets the registry and the settlement window (the deployable checked them); both id
         counters start at 1.
    @param registry_ The CapsuleRegistry.
    @param settlement_window_ The UsageMeter's settlement window.
    """
    registry = registry_
    settlement_window = settlement_window_
    self._globals = G_ONE_TERMS | G_ONE_CREDENTIAL


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
    return self._globals & G_PAUSED != 0


@external
def pause():
    """
    @dev Stops terms creation and purchases (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    g: uint256 = self._globals
    self._require_not_paused(g)
    self._globals = g | G_PAUSED
    log pausable.Paused(account=msg.sender)


@external
def unpause():
    """
    @dev Resumes terms creation and purchases (PAUSER).
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    g: uint256 = self._globals
    assert g & G_PAUSED != 0, "license: not paused"
    self._globals = g & ~G_PAUSED
    log pausable.Unpaused(account=msg.sender)


@internal
@pure
def _require_not_paused(g: uint256):
    """
    @dev Reverts if the paused bit of `g` (the `_globals` word) is set.
    @param g The `_globals` word.
    """
    assert g & G_PAUSED == 0, "license: paused"
