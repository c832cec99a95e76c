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

        This deployable composes one module per mechanism (contracts/modules/, as curve's
        `MintController` composes `controller.vy`; every function is exported whole, so no
        module boundary adds an internal call to a hot path): `license_wiring` the trusted
        contracts, the id counters and the pause bit (`_globals`), `license_terms` the terms
        book and its packed layout, `license_credentials` purchase, transfers, revocation and
        the credential records, `license_rules` the rules above (`consume`, `check_usage`,
        `authorize`, `can_derive_many`). It keeps the ERC-165 answer and the constructor.
        Every event is declared once, in `interfaces/ILicenseManager.vyi`.
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

from interfaces import ILicenseManager

implements: IERC165
implements: IERC721
implements: ILicenseManager

from snekmate.auth import access_control

initializes: access_control

# @dev Bit masks of the packed words (one home: contracts/modules/masks.vy).
from .modules import masks
from .modules import erc721_lean

initializes: erc721_lean

from .modules import license_wiring

initializes: license_wiring[access_control := access_control]

from .modules import license_terms

initializes: license_terms[license_wiring := license_wiring]

# mamushi splits a line this long into a form it cannot parse back: these two stay one line each.
# fmt: off
from .modules import license_credentials

initializes: license_credentials[access_control := access_control, erc721_lean := erc721_lean, license_wiring := license_wiring, license_terms := license_terms]

from .modules import license_rules

initializes: license_rules[erc721_lean := erc721_lean, license_wiring := license_wiring, license_terms := license_terms, license_credentials := license_credentials]
# fmt: on
exports: (
    # Hot paths first: Vyper's dispatcher (sparse selector table, `optimize gas`) tests the
    # functions of one selector bucket in export order, ~22 gas per function tested before the
    # right one. `consume` shares its bucket with `grantRole` and `authorize`, `can_derive_many`
    # with `safeTransferFrom`; listed first, each is found on the first test.
    license_rules.consume,
    license_rules.unconsume,
    license_rules.can_derive_many,
    license_credentials.purchase,
    # ERC-721 core without the module's transfers: `transferFrom` / `safeTransferFrom` are
    # license_credentials' (they refuse locked ERC-5192 credentials). `supportsInterface` is defined here.
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
    # The wiring, the id counters and the pause.
    license_wiring.PAUSER_ROLE,
    license_wiring.registry,
    license_wiring.settlement_window,
    license_wiring.usage_meter,
    license_wiring.wire,
    license_wiring.revenue_sink,
    license_wiring.next_terms_id,
    license_wiring.next_credential_id,
    license_wiring.paused,
    license_wiring.pause,
    license_wiring.unpause,
    # The terms book.
    license_terms.LICENSOR_AT_WILL,
    license_terms.ARBITER_ON_BREACH,
    license_terms.create_terms,
    license_terms.set_terms_active,
    license_terms.terms,
    license_terms.terms_active,
    license_terms.credentials_issued,
    license_terms.terms_id_of,
    # Credentials (`purchase` above): ERC-721 transfers (ERC-5192 locks), revocation, records.
    license_credentials.ARBITER_ROLE,
    license_credentials.transferFrom,
    license_credentials.safeTransferFrom,
    license_credentials.revoke,
    license_credentials.credential,
    license_credentials.rate_window,
    license_credentials.last_transfer,
    license_credentials.locked,
    license_credentials.tokenURI,
    # The usage and derivative rules (hot paths above): status codes and the checks.
    license_rules.OK,
    license_rules.UNKNOWN_CREDENTIAL,
    license_rules.EXPIRED,
    license_rules.REVOKED,
    license_rules.QUOTA_EXCEEDED,
    license_rules.RATE_EXCEEDED,
    license_rules.PURPOSE_OUT_OF_SCOPE,
    license_rules.NOT_HOLDER,
    license_rules.CAPSULE_FLAGGED,
    license_rules.authorize,
    license_rules.check_usage,
    license_rules.can_derive,
)


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
    license_wiring.__init__(registry_, settlement_window_)
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(license_credentials.ARBITER_ROLE, admin_)
    access_control._grant_role(license_wiring.PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """
    @dev ERC-165: ERC-165, ERC-721, ERC-721 metadata, ERC-5192, access control.
    @param interface_id The 4-byte interface identifier.
    @return bool Whether the interface is supported.
    """
    return interface_id in [0x01FFC9A7, 0x80AC58CD, 0x5B5E139F, 0xB45A3C0E, 0x7965DB0B]
