# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title LicenseManager usage rules: what a credential allows, per voucher and per derivation
@custom:contract-name license_rules
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns the rules a credential is judged by (`_check`, see the LicenseManager header for
        the rules and their order) and their hot paths: the UsageMeter asks `consume` once per
        voucher, judged at the voucher's `issued_at` (and `unconsume` restores the usage word
        when the meter then refuses the voucher); the CapsuleRegistry asks `can_derive_many`
        once per mint for the parent edges taken through credentials. Reads the terms words
        (license_terms), the credential's owner word (erc721_lean) and usage and transfer
        words (license_credentials); writes only usage words (`consume`, `unconsume`) and two
        transient maps. Initialized by the LicenseManager deployable.

        Example (exported by LicenseManager):
            lm.authorize(cred, me, SCOPE_RESEARCH, block.timestamp)       # True
            lm.check_usage(cred, 1_000, SCOPE_RESEARCH, issued_at, payer)  # status 0: OK
            lm.consume(cred, 1_000, SCOPE_RESEARCH, issued_at, payer)      # UsageMeter only
@custom:security `consume` / `unconsume` accept only the wired UsageMeter and make no external
        call (hence `@reentrant`: the meter holds its own lock). The only external call here
        is the view `state_at` of the immutable CapsuleRegistry.
"""

from interfaces import ICapsuleRegistry
from interfaces import ILicenseManager

from . import erc721_lean

uses: erc721_lean

from . import license_wiring

uses: license_wiring

from . import license_terms

uses: license_terms

from . import license_credentials

uses: license_credentials

from . import masks
from . import reasons


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


# @dev Per credential, the usage word (+ 1; 0: nothing to undo) that a `consume` of this
#      transaction replaced: `unconsume` can restore exactly that and nothing else
#      (transient storage: gone when the transaction ends).
_undo: transient(HashMap[uint256, uint256])


# @dev Capsule => unix time `at` => True once `consume` saw the capsule not FLAGGED at `at`, for
#      `at` before this block only: a state change is dated at its block, so the state at an
#      earlier time is final and a batch asks the CapsuleRegistry once per (capsule, issued_at)
#      (transient storage: gone when the transaction ends).
_not_flagged: transient(HashMap[uint256, HashMap[uint256, bool]])


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
    assert msg.sender == license_wiring.usage_meter, "license: not meter"
    res: ILicenseManager.UsageCheck = empty(ILicenseManager.UsageCheck)
    new_usage: uint256 = 0
    previous: uint256 = 0  # the usage word, read once (in `_check`)
    res, new_usage, previous = self._check(credential_id, mu, purpose, at, True, payer, True)
    if res.status == OK:
        if mu != 0:
            license_credentials._usage[credential_id] = new_usage
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
    assert msg.sender == license_wiring.usage_meter, "license: not meter"
    word: uint256 = self._undo[credential_id]
    assert word != 0, "license: nothing to undo"
    license_credentials._usage[credential_id] = word - 1
    self._undo[credential_id] = 0


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
    a: uint256 = license_terms._terms[terms_id].a
    b: uint256 = license_terms._terms[terms_id].b
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
    if b & license_terms.B_TRANSFERABLE != 0:
        t: uint256 = license_credentials._transfers[credential_id]
        if at < t >> 160:
            res.holder = convert(convert(t & masks.MASK160, uint160), address)
    if payer != res.holder:
        res.status = NOT_HOLDER
        return res, 0, 0
    usage: uint256 = license_credentials._usage[credential_id]
    revoked_at: uint256 = usage >> 216
    if revoked_at != 0 and at >= revoked_at:
        res.status = REVOKED
        return res, 0, 0
    # A dispute flag stops usage from the moment it is set; usage served before it stays payable.
    if (
        check_flag
        and not self._not_flagged[res.capsule_id][at]
        and staticcall ICapsuleRegistry(license_wiring.registry).state_at(res.capsule_id, at)
        == license_wiring.STATE_FLAGGED
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
    if b & license_terms.B_LIMITS != 0:
        c: uint256 = license_terms._terms[terms_id].c
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
    e: uint256 = license_terms._terms[aux & masks.MASK56].e
    if (
        e & license_terms.E_DERIVABLE == 0
        or (e >> 96) & masks.MASK64 != capsule_id
        or convert(share_bps, uint256) < e & masks.MASK16
    ):
        return False
    duration: uint256 = (e >> 160) & masks.MASK32
    if block.timestamp > masks.MASK40 or (duration != 0 and block.timestamp >= (aux >> 56) + duration):
        return False
    if e & license_terms.E_REVOKED != 0:
        revoked_at: uint256 = license_credentials._usage[credential_id] >> 216
        if revoked_at != 0 and block.timestamp >= revoked_at:
            return False
    return True
