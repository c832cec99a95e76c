# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title RoyaltyRouter: the CodexField royalty graph
@custom:contract-name RoyaltyRouter
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Owns the royalty balances of every capsule, per ERC-20 token: a vault (revenue not
        yet propagated) and a claimable balance (the capsule owner's part after
        propagation). Revenue enters a vault in O(1): `pay` (anyone, pulls the tokens) or
        `credit` (only the two creditors wired once at set-up, the LicenseManager and the
        UsageMeter, which have already sent the tokens).
        Anyone (normally a keeper) calls `propagate`, which moves exactly one hop: each
        parent's share into the parent's vault (into its claimable for a parent without
        parents, whose own hop could only pay its owner), the rest into the capsule's
        claimable.
        Shares use cumulative rounding (Drips `Splits.sol`): parent i receives
        floor(amount * cum_i / 10000) - floor(amount * cum_(i-1) / 10000), so the parents'
        parts and the owner's part sum to `amount` exactly. Deep graphs settle hop by hop,
        children before parents, so no call's gas grows with the graph's depth. The current
        ERC-721 owner of a capsule claims (pull payment); a claim propagates first.

        Example:
            usdc.approve(router, 100e6)
            router.pay(7, usdc, 100e6)          # vault[7] = 100e6
            router.propagate_many([7, 3], usdc) # 7's parents (e.g. 3) first get their share
            router.claim(7, usdc, me)           # the owner of capsule 7 withdraws

        Storage: one slot per (capsule, token) packs a live bit (bit 255), the claimable
        (bits 128..254) and the vault (bits 0..127), so a propagation touches one slot per
        capsule. Slots stay warm by construction: every write sets the live bit and `claim`
        leaves it, so once a (capsule, token) has been credited its slot is never zero again
        and every later credit, propagation or claim writes non-zero to non-zero (2.9k, not
        a fresh 20k), the effect 0xSplits v1 gets by leaving 1 wei. The bit costs one bit of
        the claimable: MAX_BALANCE is 2**127 - 1 for both balances, and allowed tokens must
        keep their total supply within it. The first `propagate` of a capsule
        copies its parents from the registry (lineage never changes) into a lineage
        snapshot; later hops read it instead of calling the registry.
@custom:security Trusts the CapsuleRegistry (immutable) for owners and parents, and the two
        creditors fixed by `wire` (once, never changeable) to have sent the tokens they
        credit, to a capsule that exists. There is no creditor role: governance (the admin,
        a timelock) can pause `pay` and edit the token allow-list of `pay` and of new
        license terms, and nothing else; no admin function reaches a vault or a claimable.
        Allowed tokens must be plain ERC-20s (no fee on transfer, no rebasing) with a total
        supply of at most MAX_BALANCE = 2**127 - 1. Every token-moving function is
        non-reentrant (pragma; `credit`, `propagate` and `propagate_many`, which move no
        token, are exempt: every locked function re-reads what it writes after its external
        calls) and follows checks-effects-interactions; `pay` checks the balance delta.
@custom:kill Pausing (PAUSER) stops `pay` (new revenue from outside) only. It never stops
        `credit` from the wired creditors (settling usage already served and fees already
        paid), `propagate`, `propagate_many` or `claim`, for any token, allowed or not.
"""

from ethereum.ercs import IERC20

from interfaces import ICapsuleRegistry
from interfaces import IRoyaltyRouter

from .modules import lineage
from .modules import masks

implements: IRoyaltyRouter

from snekmate.auth import access_control

initializes: access_control

from snekmate.utils import pausable

initializes: pausable

exports: (
    # Roles (admin meant to be a timelock); `supportsInterface` is not exported (not an NFT).
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    pausable.paused,
)


# @dev Role that may pause `pay`.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev Basis points in a whole.
BPS: public(constant(uint256)) = 10_000


# @dev Largest vault or claimable balance, and largest total supply of an allowed token: the
#      claimable has 127 bits beside the live bit, the vault is held to the same bound.
MAX_BALANCE: public(constant(uint256)) = 2**127 - 1


# @dev Live bit of a balance slot: set by every write and kept by `claim`, so a slot that was
#      ever credited never returns to zero (keeps later writes non-zero to non-zero).
_LIVE: constant(uint256) = 2**255


# @dev Flag of a cached lineage (bit 255 of its first slot).
_CACHED: constant(uint256) = 2**255


# @dev Root flag of a parent entry in the lineage snapshot: bit 15 of the entry's 16-bit share
#      field (bit 79 of the entry), free because shares never exceed 10,000 < 2**14. Set when
#      the parent has no parents itself: its part goes straight to its claimable.
_ROOT: constant(uint256) = 2**79


# @dev Mask of an entry's share once shifted by 64, without the root flag.
_SHARE_MASK: constant(uint256) = 2**15 - 1


# @dev The CapsuleRegistry that owns capsules and their lineage.
registry: public(immutable(ICapsuleRegistry))


# @dev Packed balances per (capsule, token): _LIVE | claimable << 128 | vault, keyed by
#      `token << 96 | capsule id` (one hash per access instead of two; see `_key`).
_balances: HashMap[uint256, uint256]


# @dev Lineage snapshot per capsule, copied from the registry at its first `propagate`
#      (parents never change): slot 0 bit 255 = cached, bits 240..247 = parent count;
#      parents three per slot as (capsule id 64 | share 15 | root 1) at bit offsets 0, 80,
#      160 (the lineage module's layout, plus the root flag in the share's top bit).
_lineage: HashMap[uint256, uint256[3]]


# @dev Tokens that `pay` accepts and that the LicenseManager accepts for new terms (admin).
#      `credit` ignores it: delisting never blocks settling revenue already earned.
token_allowed: public(HashMap[address, bool])


# @dev The LicenseManager, the first of the two creditors (zero until `wire`, then fixed).
license_manager: public(address)


# @dev The UsageMeter, the second creditor (zero until `wire`, then fixed).
usage_meter: public(address)


# @dev True for exactly the two wired creditors (one slot read per `credit`, whichever calls).
_is_creditor: HashMap[address, bool]


@deploy
def __init__(registry_: address, admin_: address):
    """
    @dev Grants DEFAULT_ADMIN and PAUSER to `admin_` only (meant to be a timelock) and
         revokes the deployer's admin role (snekmate grants it first), so the RoleGranted /
         RoleRevoked events of this transaction show every role holder. The creditors are
         set later, once, by `wire`.
    @param registry_ The CapsuleRegistry.
    @param admin_ The governance address.
    """
    access_control.__init__()
    pausable.__init__()
    assert registry_ != empty(address), "royalty: zero registry"
    assert admin_ != empty(address), "royalty: zero admin"
    registry = ICapsuleRegistry(registry_)
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)


@external
def pay(capsule_id: uint256, token: address, amount: uint256):
    """
    @dev Pulls `amount` of `token` from the caller (approve first) into the capsule's vault.
    @notice External revenue, tips, AI-output sales. The token must be allowed and must
            deliver exactly `amount` (fee-on-transfer tokens are rejected); the capsule must
            exist. Stopped while paused.
    @param capsule_id The capsule that earned the revenue.
    @param token The ERC-20 token.
    @param amount The amount, in the token's smallest unit (non-zero).
    """
    assert not pausable.paused, "royalty: paused"
    assert self.token_allowed[token], "royalty: token not allowed"
    assert amount != 0, "royalty: zero amount"
    # No capsule id reaches 2**96 (the registry counts from 1); a larger one would alias
    # another capsule's balance key.
    assert capsule_id <= masks.MASK96, "royalty: unknown capsule"
    key: uint256 = (convert(token, uint256) << 96) | capsule_id
    # A live slot was written before, which only happens for a minted capsule (capsules are
    # never burnt): the registry is asked only the first time.
    if self._balances[key] == 0:
        assert staticcall registry.exists(capsule_id), "royalty: unknown capsule"
    # `erc20_exact.transfer_from` written out (issue 18): the call into it, and its frame under
    # this one, cost 275 gas per `pay` (measured), which would put the K=2 royalty cycle above
    # 0xSplits SplitMain again.
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(
        msg.sender, self, amount, default_return_value=True
    ), "royalty: transfer failed"
    after: uint256 = staticcall IERC20(token).balanceOf(self)
    # A shrunk balance wraps to a huge difference, never `amount` (which is at most `after`).
    assert unsafe_sub(after, before) == amount, "royalty: fee-on-transfer token"
    assert after <= MAX_BALANCE, "royalty: balance overflow"
    # The vault is re-read after the calls (a hop may have landed inside them). Adding to a
    # vault is written out here and in `credit` (an internal function's frame would sit under
    # this one, and the call costs ~40); here amount <= after <= MAX_BALANCE: no wrap.
    slot: uint256 = self._balances[key]
    v: uint256 = unsafe_add(slot & masks.MASK128, amount)
    assert v <= MAX_BALANCE, "royalty: balance overflow"
    self._balances[key] = (slot & ~masks.MASK128) | v | _LIVE
    log IRoyaltyRouter.RoyaltyCredited(capsule_id=capsule_id, token=token, amount=amount, payer=msg.sender)


@external
@reentrant
def credit(capsule_id: uint256, token: address, amount: uint256):
    """
    @dev Adds `amount` to the capsule's vault; the caller has already transferred the tokens.
    @notice Only the wired creditors (the LicenseManager's upfront fees, the UsageMeter's
            license amounts). The hot path: no external call; the creditor vouches that the
            capsule exists. Never stopped by the pause or the token allow-list (usage already
            served must settle). A zero amount is a no-op (no event). Exempt from the
            reentrancy lock (`@reentrant`): it makes no external call and moves no token, and
            every locked function re-reads the slot it writes after its own external calls,
            so a credit landing inside one of them (only a wired creditor can) is counted
            exactly; the lock would cost 300 of its 10k budget.
    @param capsule_id The capsule that earned the revenue.
    @param token The ERC-20 token (the terms' payment token).
    @param amount The amount already sent to this contract.
    """
    assert self._is_creditor[msg.sender], "royalty: not creditor"
    if amount == 0:
        return
    # The creditor's capsule exists, so its id is below 2**96 (see `pay`). Written out as in
    # `pay`; `amount` is unbounded here, so the sum is checked.
    key: uint256 = (convert(token, uint256) << 96) | capsule_id
    slot: uint256 = self._balances[key]
    v: uint256 = (slot & masks.MASK128) + amount
    assert v <= MAX_BALANCE, "royalty: balance overflow"
    self._balances[key] = (slot & ~masks.MASK128) | v | _LIVE
    log IRoyaltyRouter.RoyaltyCredited(capsule_id=capsule_id, token=token, amount=amount, payer=msg.sender)


@external
@reentrant
def propagate(capsule_id: uint256, token: address):
    """
    @dev Moves one hop: the capsule's vault to its parents (their shares, with cumulative
         rounding: a parent without parents gets its part in its claimable, any other in its
         vault) and to its claimable (the rest).
    @notice Anyone; works while paused and for any token. An empty vault is a no-op (no
            event, no revert), so racing keepers never fail. Outside the reentrancy lock
            (moves no token, as `credit`).
    @param capsule_id The capsule whose vault moves.
    @param token The ERC-20 token.
    """
    # `_propagate` written out for the warm hop: the registry call's buffers of a first hop
    # (`_snapshot`) would sit under this frame and every hop would pay for that memory. An id
    # of 2**96 or more (no such capsule, see `pay`) has no snapshot: it goes the cold way,
    # where `_propagate` ignores it.
    key: uint256 = (convert(token, uint256) << 96) | capsule_id
    slot: uint256 = self._balances[key]
    if slot & masks.MASK128 == 0:
        return
    head: uint256 = self._lineage[capsule_id][0]
    if head == 0:
        # The capsule's first hop (lineage snapshot): through `propagate_many`, in its frame.
        extcall IRoyaltyRouter(self).propagate_many([capsule_id], token)
        return
    self._balances[key] = self._split(capsule_id, token, slot, head)


@external
@reentrant
def propagate_many(capsule_ids: DynArray[uint256, 128], token: address):
    """
    @dev `propagate` for each capsule in order; empty vaults are skipped.
    @notice Order children before parents (codexfield.royalty.plan) so that a parent's
            vault is propagated once with everything its children gave it.
    @param capsule_ids Up to 128 capsules, in propagation order.
    @param token The ERC-20 token.
    """
    for capsule_id: uint256 in capsule_ids:
        self._propagate(capsule_id, token)


@external
def claim(capsule_id: uint256, token: address, to: address) -> uint256:
    """
    @dev Propagates the capsule's vault (through `propagate`), then pays its whole claimable
         balance to `to`.
    @notice Only the capsule's current ERC-721 owner. Works while paused and for any token.
            Nothing to claim returns 0 without a transfer or an event.
    @param capsule_id The capsule.
    @param token The ERC-20 token.
    @param to The recipient.
    @return uint256 The amount paid.
    """
    assert to != empty(address), "royalty: zero recipient"
    owner: address = staticcall registry.ownerOf(capsule_id)
    assert owner == msg.sender, "royalty: not owner"
    # The owner exists, so the id is below 2**96 (see `pay`).
    key: uint256 = (convert(token, uint256) << 96) | capsule_id
    slot: uint256 = self._balances[key]
    if slot & masks.MASK128 != 0:
        # The hop itself, through `propagate` (outside the lock): a call here would put the
        # hop's frames under this one, and every claim would pay for that memory.
        extcall IRoyaltyRouter(self).propagate(capsule_id, token)
        slot = self._balances[key]
    # The vault part is zero here: the whole claimable is paid out; the live bit stays.
    amount: uint256 = (slot >> 128) & masks.MASK127
    if amount == 0:
        if slot != self._balances[key]:
            self._balances[key] = slot  # the propagated vault (nothing to the owner)
        return 0
    self._balances[key] = _LIVE
    log IRoyaltyRouter.RoyaltyClaimed(capsule_id=capsule_id, token=token, owner=owner, to=to, amount=amount)
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "royalty: transfer failed"
    return amount


@external
def wire(license_manager_: address, usage_meter_: address):
    """
    @dev Sets the two creditors (admin, once): they can never change afterwards, and no
         other address can ever `credit`.
    @notice Emits `Wired`. Reverts "royalty: already wired" the second time.
    @param license_manager_ The LicenseManager (credits upfront fees).
    @param usage_meter_ The UsageMeter (credits settled usage).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self.license_manager == empty(address), "royalty: already wired"
    assert license_manager_ != empty(address) and usage_meter_ != empty(address), "royalty: zero address"
    self.license_manager = license_manager_
    self.usage_meter = usage_meter_
    self._is_creditor[license_manager_] = True
    self._is_creditor[usage_meter_] = True
    log IRoyaltyRouter.Wired(license_manager=license_manager_, usage_meter=usage_meter_)


@external
def set_token_allowed(token: address, allowed: bool):
    """
    @dev Adds or removes a token from the allow-list of `pay` and of new license terms
         (admin; the LicenseManager's `create_terms` asks `token_allowed`).
    @notice Removing a token never blocks `credit`, propagation or claims of existing
            balances. Allowing checks that the token's total supply is at most MAX_BALANCE
            (2**127 - 1).
    @param token The ERC-20 token.
    @param allowed Whether `pay` and new terms accept it.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert token != empty(address), "royalty: zero token"
    if allowed:
        assert staticcall IERC20(token).totalSupply() <= MAX_BALANCE, "royalty: supply too large"
    self.token_allowed[token] = allowed
    log IRoyaltyRouter.TokenAllowed(token=token, allowed=allowed)


@external
def pause():
    """
    @dev Stops `pay` (PAUSER). `credit`, propagation and claims continue.
    @notice Reverts "royalty: paused" when already paused.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    assert not pausable.paused, "royalty: paused"
    pausable._pause()


@external
def unpause():
    """
    @dev Resumes `pay` (PAUSER).
    @notice Reverts "royalty: not paused" when not paused.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    assert pausable.paused, "royalty: not paused"
    pausable._unpause()


@external
@view
def vault(capsule_id: uint256, token: address) -> uint256:
    """
    @dev Revenue of a capsule not yet propagated.
    @param capsule_id The capsule.
    @param token The ERC-20 token.
    @return uint256 The vault balance.
    """
    if capsule_id > masks.MASK96:
        return 0  # no such capsule (see `pay`)
    return self._balances[(convert(token, uint256) << 96) | capsule_id] & masks.MASK128


@external
@view
def claimable(capsule_id: uint256, token: address) -> uint256:
    """
    @dev What the capsule's owner can claim now (after propagation; `claim` also propagates
         the vault first, so the owner receives up to this plus the vault's owner part).
    @param capsule_id The capsule.
    @param token The ERC-20 token.
    @return uint256 The claimable balance.
    """
    if capsule_id > masks.MASK96:
        return 0  # no such capsule (see `pay`)
    return (self._balances[(convert(token, uint256) << 96) | capsule_id] >> 128) & masks.MASK127


@external
@view
def lineage_cached(capsule_id: uint256) -> bool:
    """
    @dev Whether the router holds its snapshot of the capsule's parents (taken at the
         capsule's first `propagate`, for any token).
    @param capsule_id The capsule.
    @return bool True once cached.
    """
    return self._lineage[capsule_id][0] != 0


@internal
def _propagate(capsule_id: uint256, token: address):
    """
    @dev One hop for one capsule; no-op on an empty vault.
    @param capsule_id The capsule.
    @param token The ERC-20 token.
    """
    if capsule_id > masks.MASK96:
        return  # no such capsule, hence an empty vault (see `pay`)
    key: uint256 = (convert(token, uint256) << 96) | capsule_id
    slot: uint256 = self._balances[key]
    if slot & masks.MASK128 != 0:
        head: uint256 = self._lineage[capsule_id][0]
        if head == 0:
            head = self._snapshot(capsule_id)
        self._balances[key] = self._split(capsule_id, token, slot, head)


@internal
def _snapshot(capsule_id: uint256) -> uint256:
    """
    @dev Copies a capsule's parents from the registry into the lineage snapshot (first hop of
         the capsule only; lineage never changes, so the copy never goes stale), with the root
         flag of every parent that has no parents itself. One-time cost: the registry's
         `parents` of the capsule and of each parent, one fresh slot per three parents (at
         least one). Raw calls with byte buffers keep this function's memory small: every
         hop's frame sits above it.
    @param capsule_id The capsule.
    @return uint256 The snapshot's first word (cached flag, parent count, first parents).
    """
    # ABI of DynArray[Parent, 8]: offset, length, then (capsule_id, share_bps) per parent.
    raw: Bytes[576] = raw_call(
        registry.address,
        abi_encode(capsule_id, method_id=method_id("parents(uint256)")),
        max_outsize=576,
        is_static_call=True,
    )
    n: uint256 = convert(extract32(raw, 32), uint256)
    words: uint256[3] = empty(uint256[3])
    for i: uint256 in range(n, bound=lineage.MAX_PARENTS):
        parent: uint256 = convert(extract32(raw, 64 + 64 * i), uint256)
        assert parent <= masks.MASK64, "royalty: capsule id too large"
        e: uint256 = parent | (convert(extract32(raw, 96 + 64 * i), uint256) << 64)
        # Only the parent's parent count is read: the first 64 bytes of its `parents`.
        count: Bytes[64] = raw_call(
            registry.address,
            abi_encode(parent, method_id=method_id("parents(uint256)")),
            max_outsize=64,
            is_static_call=True,
        )
        if extract32(count, 32) == empty(bytes32):
            e |= _ROOT
        words[i // lineage.PER_WORD] |= e << (lineage.ENTRY_BITS * (i % lineage.PER_WORD))
    head: uint256 = words[0] | _CACHED | (n << 240)
    self._lineage[capsule_id][0] = head
    if n > 3:
        self._lineage[capsule_id][1] = words[1]
    if n > 6:
        self._lineage[capsule_id][2] = words[2]
    return head


@internal
def _split(capsule_id: uint256, token: address, slot: uint256, head: uint256) -> uint256:
    """
    @dev Splits the vault held in `slot` between the parents (each part written to the
         parent's vault, or to its claimable for a root parent) and the capsule's claimable;
         the caller writes the returned slot back. Cumulative rounding: parent i gets
         floor(amount * cum_i / BPS) - given so far. Reads the rest of the lineage snapshot,
         only the slots in use. Callers take the snapshot (`_snapshot`) on a capsule's first
         hop themselves: called from here, its frame would sit under this one's.
    @param capsule_id The capsule.
    @param token The ERC-20 token.
    @param slot The capsule's packed balances (vault non-zero).
    @param head The capsule's first lineage snapshot word (cached flag, count, parents 1-3).
    @return uint256 The capsule's new packed balances (vault zero, live bit set).
    """
    amount: uint256 = slot & masks.MASK128
    tkey: uint256 = convert(token, uint256) << 96
    cum_bps: uint256 = 0
    given: uint256 = 0
    for i: uint256 in range((head >> 240) & masks.MASK8, bound=lineage.MAX_PARENTS):
        # `lineage.at` written out (no internal call per parent): parent i is the low 80 bits
        # of `head`, shifted down after each parent; one snapshot slot per three parents.
        if i == 3 or i == 6:
            head = self._lineage[capsule_id][i // lineage.PER_WORD]
        # Shares sum to <= 10,000 (registry invariant) and amount < 2**128: no overflow.
        cum_bps = unsafe_add(cum_bps, (head >> 64) & _SHARE_MASK)
        due: uint256 = unsafe_sub(unsafe_div(unsafe_mul(amount, cum_bps), BPS), given)
        if due != 0:
            given = unsafe_add(given, due)
            pkey: uint256 = tkey | (head & masks.MASK64)
            # A root parent (no parents of its own) would only ever pass its vault to its
            # owner: its part goes straight to its claimable (offset 128: bit 79 of the entry
            # is bit 7 of entry >> 72), any other parent's to its vault (offset 0).
            at: uint256 = (head >> 72) & 128
            pslot: uint256 = self._balances[pkey]
            # Both balances stay below 2**127, so adding `due` at `at` carries into nothing.
            assert unsafe_add((pslot >> at) & masks.MASK127, due) <= MAX_BALANCE, "royalty: balance overflow"
            self._balances[pkey] = unsafe_add(pslot, due << at) | _LIVE
        head >>= lineage.ENTRY_BITS
    # given <= amount (cumulative shares <= 10,000); both terms below 2**128: no wrap.
    to_owner: uint256 = unsafe_sub(amount, given)
    claimable: uint256 = unsafe_add((slot >> 128) & masks.MASK127, to_owner)
    assert claimable <= MAX_BALANCE, "royalty: balance overflow"
    log IRoyaltyRouter.RoyaltyPropagated(
        capsule_id=capsule_id, token=token, amount=amount, to_parents=given, to_owner=to_owner
    )
    return _LIVE | (claimable << 128)
