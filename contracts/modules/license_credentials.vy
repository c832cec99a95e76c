# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title LicenseManager credentials: purchase, transfers, revocation and records
@custom:contract-name license_credentials
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns the capability credentials bought under terms: `purchase` mints one (an ERC-721,
        soulbound per ERC-5192 unless the terms are transferable) for a holder and sends the
        upfront fee from the buyer straight to the revenue sink; a transferable credential
        records its previous holder and the transfer time and cannot move again within
        `settlement_window` of its last transfer (so one previous holder covers every voucher
        still payable); `revoke` sets when a revocation takes effect, as the terms allow.
        A credential lives in the ERC-721 owner slot (holder 160 | terms_id 56 | issued_at 40
        in the 96-bit aux); its usage word (mu_used 96 | window start 40 | MU in window 80 |
        revocation effective time 40) is written only by `consume` (the usage-rule module)
        and `revoke`. Initialized by the LicenseManager deployable, used (`uses:
        license_credentials`) by the usage-rule module.

        Example (exported by LicenseManager):
            usdc.approve(lm, 10_000_000)
            cred = lm.purchase(tid, me, 10_000_000)     # max_upfront protects the buyer
            lm.credential(cred).mu_used                 # 0
            lm.revoke(cred, ruling_hash, sender=arbiter)  # terms with ARBITER_ON_BREACH
@custom:security Upfront fees go straight from the buyer to the sink (this contract never
        holds tokens), after every state write; tokens that deliver less than the fee
        (fee-on-transfer) are refused by a balance-delta check. A revocation only ever brings
        the effective time earlier; usage dated before it stays payable.
"""

from ethereum.ercs import IERC20

from interfaces import ICapsuleRegistry
from interfaces import ILicenseManager
from interfaces import IRoyaltyRouter

from snekmate.auth import access_control

uses: access_control

from . import erc721_lean

uses: erc721_lean

from . import license_wiring

uses: license_wiring

from . import license_terms

uses: license_terms

from . import masks


# @dev Role that may revoke credentials whose terms allow ARBITER_ON_BREACH (immediately).
ARBITER_ROLE: public(constant(bytes32)) = keccak256("ARBITER")


# @dev Last transfer per transferable credential: previous holder 160 | transfer time 40.
_transfers: HashMap[uint256, uint256]


# @dev Usage per credential: mu_used 96 | rate window start 40 | MU in window 80 | revoked_at 40.
_usage: HashMap[uint256, uint256]


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
    g: uint256 = license_wiring._globals
    license_wiring._require_not_paused(g)
    d: uint256 = license_terms._terms[terms_id].d
    assert d != 0, "license: unknown terms"
    assert d & license_terms.D_ACTIVE != 0, "license: terms inactive"
    a: uint256 = license_terms._terms[terms_id].a
    capsule_id: uint256 = (a >> 160) & masks.MASK64
    state: uint8 = staticcall ICapsuleRegistry(license_wiring.registry).state(capsule_id)
    assert state != license_wiring.STATE_DISABLED, "license: capsule disabled"
    assert state != license_wiring.STATE_FLAGGED, "license: capsule flagged"
    issued: uint256 = (d >> 128) & masks.MASK32
    max_credentials: uint256 = (d >> 160) & masks.MASK32
    assert issued < masks.MASK32 and (max_credentials == 0 or issued < max_credentials), "license: sold out"
    fee: uint256 = d & masks.MASK128
    assert fee <= max_upfront, "license: upfront above max"
    assert holder != empty(address), "license: zero holder"

    credential_id: uint256 = (g >> 200) & masks.MASK55
    assert credential_id < masks.MASK55, "license: too many credentials"
    license_wiring._globals = g + license_wiring.G_ONE_CREDENTIAL
    license_terms._terms[terms_id].d = d + license_terms.D_ONE_ISSUED
    erc721_lean._mint(holder, credential_id, terms_id | (block.timestamp << 56))
    duration: uint256 = a >> 224
    expires_at: uint256 = 0
    if duration != 0:
        expires_at = block.timestamp + duration
    if d & license_terms.D_TRANSFERABLE == 0:
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
        # `erc20_exact.transfer_from` written out: the call into it costs ~210 gas per paid
        # purchase (measured with tests/gas/test_gas_license.py), as RoyaltyRouter.pay found.
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
    revocation: uint256 = (license_terms._terms[terms_id].d >> 192) & 255
    assert revocation != 0, "license: irrevocable"

    is_arbiter: bool = access_control.hasRole[ARBITER_ROLE][msg.sender]
    effective: uint256 = 0
    if is_arbiter and revocation & convert(license_terms.ARBITER_ON_BREACH, uint256) != 0:
        effective = block.timestamp
    else:
        capsule_id: uint256 = (license_terms._terms[terms_id].a >> 160) & masks.MASK64
        if msg.sender == staticcall ICapsuleRegistry(license_wiring.registry).ownerOf(capsule_id):
            assert (
                revocation & convert(license_terms.LICENSOR_AT_WILL, uint256) != 0
            ), "license: not revocable by licensor"
            effective = block.timestamp + ((license_terms._terms[terms_id].e >> 16) & masks.MASK64)
        else:
            assert not is_arbiter, "license: not revocable by arbiter"
            raise "license: not revoker"
    usage: uint256 = self._usage[credential_id]
    current: uint256 = usage >> 216
    assert current == 0 or effective < current, "license: already revoked"
    self._usage[credential_id] = (usage & masks.MASK216) | (effective << 216)
    e: uint256 = license_terms._terms[terms_id].e
    if e & (license_terms.E_DERIVABLE | license_terms.E_REVOKED) == license_terms.E_DERIVABLE:
        license_terms._terms[terms_id].e = e | license_terms.E_REVOKED  # from now on `can_derive` reads usage words
    log ILicenseManager.CredentialRevoked(
        credential_id=credential_id, by=msg.sender, reason=reason, effective_at=convert(effective, uint64)
    )


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
    duration: uint256 = license_terms._terms[terms_id].a >> 224
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
    return license_terms._terms[aux & masks.MASK56].d & license_terms.D_TRANSFERABLE == 0


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
    a: uint256 = license_terms._terms[terms_id].a
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
        assert (
            license_terms._terms[aux & masks.MASK56].d & license_terms.D_TRANSFERABLE != 0
        ), "license: credential locked"
        last: uint256 = self._transfers[token_id] >> 160
        assert last == 0 or block.timestamp >= last + license_wiring.settlement_window, "license: transfer cooldown"
        self._transfers[token_id] = convert(owner, uint256) | (block.timestamp << 160)
