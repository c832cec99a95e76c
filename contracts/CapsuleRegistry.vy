# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title CapsuleRegistry: CodexField content capsules
@custom:contract-name CapsuleRegistry
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Owns the content capsules: ERC-721 tokens (ERC-165, ERC-2981, ERC-4906) bound to
        their creator, kind, integrity hash (SHA-256 of the canonical manifest), version chain
        and lineage (up to 8 parents with royalty shares). Lineage is a DAG by construction:
        a parent must exist before its child is minted, so no cycle can be written.
        `tokenURI` is derived on chain as `ipfs://` + the CIDv1 (raw, sha2-256, base32) of the
        content hash unless the minter set a URI.

        Example:
            id = registry.mint(2, sha256(manifest), [Parent(7, 2000)], [0], "")
            registry.tokenURI(id)  # "ipfs://bafkrei..."

        Storage layout (gas): the owner and the hot metadata share one slot (the ERC-721
        `aux` bits: created_at 40 | version 32 | flags 2 | kind 6 | state 8 | parent count 8);
        the content-hash index entry holds the capsule id and its first two parents (capsule
        id 64 | share 16 each), further parents are packed three to a slot (the head-and-tail
        layout of contracts/modules/lineage.vy, the one home of the parent packing); so a mint writes
        3 + ceil((K - 2) / 3) fresh slots (3 up to two parents). The creator is the owner until
        the capsule's first transfer, which records it (`_creator_override`): a mint does not
        pay a slot for it. The next id, the LicenseManager and the paused bit share one slot
        (`_globals`), read once per mint; the parent edges taken through credentials are
        checked in ONE `can_derive_many` call. Gas per mint, slot by slot: docs/capsules.md.

        State history: every state change is appended, with its time, to a per-capsule log
        (one fresh slot per change), so `state_at(capsule_id, at)` answers which state was in
        force at any past time (the LicenseManager settles usage served before a flag
        and refuses usage after it). A FLAGGED capsule can be neither a parent of a new
        capsule nor versioned.
@custom:security Trusts the LicenseManager fixed once by `wire` to answer `can_derive` for the
        derivative path; trusts nothing else. Holds no tokens.
@custom:kill Pausing stops `mint` and `publish_version`; it never stops transfers, state
        changes by owners and arbiters, or reads.
"""

from ethereum.ercs import IERC165
from ethereum.ercs import IERC721
from snekmate.tokens.interfaces import IERC4906
from snekmate.extensions.interfaces import IERC2981

from interfaces import ICapsuleRegistry
from interfaces import ILicenseManager

implements: IERC165
implements: IERC721
implements: IERC2981
implements: IERC4906
implements: ICapsuleRegistry

from snekmate.auth import access_control

initializes: access_control

# Pausing is a bit of `_globals` (read by `mint` anyway), not snekmate's `pausable` storage;
# its events are snekmate's.
from snekmate.utils import pausable

# @dev Bit masks of the packed words (one home: contracts/modules/masks.vy).
from .modules import masks
from .modules import lineage
from .modules import erc721_lean

initializes: erc721_lean

exports: (
    # ERC-721 core. `transferFrom` / `safeTransferFrom` are defined below rather than exported,
    # so that they run under this file's nonreentrancy lock (the module's pragma is `off`).
    erc721_lean.name,
    erc721_lean.symbol,
    erc721_lean.balanceOf,
    erc721_lean.ownerOf,
    erc721_lean.getApproved,
    erc721_lean.isApprovedForAll,
    erc721_lean.approve,
    erc721_lean.setApprovalForAll,
    # Roles (admin meant to be a timelock). `supportsInterface` is defined here.
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
)


# @dev Role that may flag capsules (disputes).
ARBITER_ROLE: public(constant(bytes32)) = keccak256("ARBITER")


# @dev Role that may pause minting.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER")


# @dev Capsule kinds: 1 dataset, 2 model, 3 code, 4 prompt, 5 inference script, 6 AI output, 7 knowledge.
MAX_KIND: public(constant(uint8)) = 7


# @dev Lifecycle states.
STATE_ACTIVE: public(constant(uint8)) = 1
STATE_DEPRECATED: public(constant(uint8)) = 2
STATE_DISABLED: public(constant(uint8)) = 3
STATE_FLAGGED: public(constant(uint8)) = 4


# @dev Basis points in a whole.
BPS: constant(uint256) = 10_000


# @dev Upper bound on ERC-2981 royalty (10%).
MAX_ROYALTY_BPS: constant(uint256) = 1_000


# @dev RFC 4648 base32 alphabet, lower case (multibase prefix `b`).
_B32: constant(String[32]) = "abcdefghijklmnopqrstuvwxyz234567"


# @dev CIDv1 prefix for raw sha2-256: version 0x01, codec 0x55, multihash 0x12, length 0x20.
_CID_PREFIX: constant(uint256) = 22_352_416  # 0x01551220


# @dev Aux flags (in the kind byte, above the 6 bits of the kind): parents 0 and 1 live in the
#      content-hash index entry; the creator was recorded by the first transfer.
_AUX_INDEX_PARENTS: constant(uint256) = 1 << 22
_AUX_CREATOR_RECORDED: constant(uint256) = 1 << 23
_KIND_BITS: constant(uint256) = 63


# @dev The paused bit of `_globals`.
_G_PAUSED: constant(uint256) = 1 << 255


# @dev Next capsule id 64 (ids start at 1 and stay below 2**64) | LicenseManager 160 (zero until
#      `wire`, then fixed) | paused 1 (bit 255): one slot, read once by `mint`.
_globals: uint256


# @dev ERC-2981 royalty on secondary sales of a capsule token, paid to its creator.
royalty_bps: public(uint256)


# @dev Content hash per capsule.
_content_hash: HashMap[uint256, bytes32]


# @dev Content-hash index: (capsule id << 192) of the first capsule with that hash | that
#      capsule's parents 0 and 1 (capsule id 64 | share 16) at bit offsets 0 and 80 (the head word
#      of lineage's head-and-tail layout), when its aux
#      has `_AUX_INDEX_PARENTS` (always for `mint`; a version re-using its chain's hash keeps all
#      its parents in `_parent_slots`).
_by_hash: HashMap[bytes32, uint256]


# @dev Creator of a capsule once it has left its creator (recorded by its first transfer, when
#      the aux gets `_AUX_CREATOR_RECORDED`); until then the creator is the owner.
_creator_override: HashMap[uint256, address]


# @dev Packed parents not in the index entry, three per slot: (capsule id 64 | share 16) at bit
#      offsets 0, 80, 160 (lineage's tail words: parents 2.. with `_AUX_INDEX_PARENTS`, else
#      parents 0.. in words of three).
_parent_slots: HashMap[uint256, uint256[3]]


# @dev Previous version of a capsule (0 for a first version).
_previous: HashMap[uint256, uint256]


# @dev First version of a version chain (0 when the capsule is its own root).
_root: HashMap[uint256, uint256]


# @dev Latest version of a chain, keyed by its root (0 while the root is the latest).
_latest: HashMap[uint256, uint256]


# @dev Optional URI set at mint.
_uri: HashMap[uint256, String[256]]


# @dev State-change log per capsule: change k (k = 1..n, oldest first) = (state << 64) | time
#      of the change; entry 1 also carries n at bit 72. Before change 1 the capsule is in its
#      mint state (ACTIVE) since created_at; the latest change's state is the one in the aux.
_state_log: HashMap[uint256, HashMap[uint256, uint256]]


@deploy
def __init__(admin_: address, royalty_bps_: uint256):
    """
    @dev Grants every role (DEFAULT_ADMIN, ARBITER, PAUSER) to `admin_` only (meant to be a
         timelock) and revokes the deployer's admin role (snekmate grants it first), so the
         RoleGranted / RoleRevoked events of this transaction show every role holder.
    @param admin_ The governance address.
    @param royalty_bps_ The ERC-2981 royalty in basis points (at most 1,000).
    """
    access_control.__init__()
    erc721_lean.__init__("CodexField Capsule", "CAPS")
    assert admin_ != empty(address), "capsule: zero admin"
    assert royalty_bps_ <= MAX_ROYALTY_BPS, "capsule: royalty too high"
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    access_control._grant_role(ARBITER_ROLE, admin_)
    access_control._grant_role(PAUSER_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self.royalty_bps = royalty_bps_
    self._globals = 1


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """
    @dev ERC-165: ERC-165, ERC-721, ERC-721 metadata, ERC-2981, ERC-4906, access control.
    @param interface_id The 4-byte interface identifier.
    @return bool Whether the interface is supported.
    """
    return interface_id in [0x01FFC9A7, 0x80AC58CD, 0x5B5E139F, 0x2A55205A, 0x49064906, 0x7965DB0B]


# Defined before the transfers: Vyper's sparse dispatcher tests the functions of a selector bucket
# in definition order (~22 gas each), and `mint` shares its bucket with `safeTransferFrom`.
@external
def mint(
    kind: uint8,
    content_hash: bytes32,
    parents: DynArray[ICapsuleRegistry.Parent, 8],
    parent_credentials: DynArray[uint256, 8],
    uri: String[256],
) -> uint256:
    """
    @dev Mints a new capsule (version 1) to the caller.
    @notice Each parent must exist and not be FLAGGED; the caller must own it or pass, at
            the same index of `parent_credentials`, a credential on it whose terms allow
            derivatives with at least `share_bps`. Shares sum to at most 10,000. A content hash can be minted once;
            re-using it is only possible as a new version by the owner (`publish_version`).
    @param kind The capsule kind, 1..7.
    @param content_hash SHA-256 of the canonical manifest (non-zero).
    @param parents Up to 8 parents with royalty shares in basis points.
    @param parent_credentials Empty, or one credential id per parent (0 where the caller owns it).
    @param uri Optional URI overriding the derived `ipfs://` CID.
    @return uint256 The new capsule id.
    """
    g: uint256 = self._globals
    assert g & _G_PAUSED == 0, "capsule: paused"
    assert kind >= 1 and kind <= MAX_KIND, "capsule: bad kind"
    assert content_hash != empty(bytes32), "capsule: empty content hash"
    assert self._by_hash[content_hash] == 0, "capsule: content hash exists"
    n: uint256 = len(parents)
    with_credentials: bool = len(parent_credentials) != 0
    assert not with_credentials or len(parent_credentials) == n, "capsule: credentials length mismatch"

    capsule_id: uint256 = self._next_id(g)
    self._globals = g + 1

    # Each parent: exists, not FLAGGED, no duplicate; owned by the caller, or an edge that the
    # LicenseManager must vouch for (all such edges in one call, after the loop).
    derivations: DynArray[ILicenseManager.Derivation, 8] = []
    total: uint256 = 0
    for i: uint256 in range(n, bound=8):
        p: ICapsuleRegistry.Parent = parents[i]
        for j: uint256 in range(i, bound=8):
            assert parents[j].capsule_id != p.capsule_id, "capsule: duplicate parent"
        parent_owner: address = empty(address)
        aux: uint256 = 0
        parent_owner, aux = erc721_lean._owner_and_aux(p.capsule_id)
        assert parent_owner != empty(address), "capsule: parent does not exist"
        assert (aux >> 8) & 255 != convert(STATE_FLAGGED, uint256), "capsule: parent flagged"
        if parent_owner != msg.sender:
            credential_id: uint256 = 0
            if with_credentials:
                credential_id = parent_credentials[i]
            assert credential_id != 0, "capsule: not parent owner"
            derivations.append(
                ILicenseManager.Derivation(credential_id=credential_id, capsule_id=p.capsule_id, share_bps=p.share_bps)
            )
        total += convert(p.share_bps, uint256)
    assert total <= BPS, "capsule: shares exceed 100%"
    if len(derivations) != 0:
        lm: address = convert(convert((g >> 64) & masks.MASK160, uint160), address)
        assert lm != empty(address), "capsule: no license manager"
        assert staticcall ILicenseManager(lm).can_derive_many(
            msg.sender, derivations
        ), "capsule: credential does not allow derivative"

    self._content_hash[capsule_id] = content_hash
    self._by_hash[content_hash] = (capsule_id << 192) | self._store_parents(capsule_id, parents, True)
    erc721_lean._mint(
        msg.sender, capsule_id, self._pack_aux(block.timestamp, 1, kind, STATE_ACTIVE, n) | _AUX_INDEX_PARENTS
    )
    if len(uri) != 0:
        self._uri[capsule_id] = uri
    log ICapsuleRegistry.CapsuleMinted(
        capsule_id=capsule_id,
        creator=msg.sender,
        kind=kind,
        content_hash=content_hash,
        previous_id=0,
        version=1,
        parents=parents,
        uri=uri,
    )
    return capsule_id


@external
@payable
def transferFrom(owner: address, to: address, token_id: uint256):
    """
    @dev ERC-721 transfer by the owner or an approved operator (under the reentrancy lock).
    @param owner The current owner.
    @param to The receiver.
    @param token_id The capsule.
    """
    erc721_lean._transfer_checked(msg.sender, owner, to, token_id)
    self._record_creator(owner, token_id)


@external
@payable
def safeTransferFrom(owner: address, to: address, token_id: uint256, data: Bytes[1_024] = b""):
    """
    @dev ERC-721 safe transfer: a contract receiver must accept it. The receiver hook runs after
         every write and under the reentrancy lock, so it cannot call back into the registry.
    @param owner The current owner.
    @param to The receiver.
    @param token_id The capsule.
    @param data Data passed to `onERC721Received`.
    """
    erc721_lean._transfer_checked(msg.sender, owner, to, token_id)
    self._record_creator(owner, token_id)
    erc721_lean._check_on_erc721_received(owner, to, token_id, data)


@external
def publish_version(previous_id: uint256, content_hash: bytes32, uri: String[256]) -> uint256:
    """
    @dev Publishes a new version of the caller's capsule; it keeps the previous version's
         kind and parents, and is minted to the caller.
    @notice `previous_id` must be the latest version of its chain and not FLAGGED. A content
            hash already used is accepted only if the caller owns the capsule that first used it.
    @param previous_id The latest version so far (owned by the caller).
    @param content_hash SHA-256 of the new canonical manifest (non-zero).
    @param uri Optional URI overriding the derived `ipfs://` CID.
    @return uint256 The new capsule id.
    """
    g: uint256 = self._globals
    assert g & _G_PAUSED == 0, "capsule: paused"
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(previous_id)
    assert owner != empty(address), "capsule: unknown capsule"
    assert owner == msg.sender, "capsule: not owner"
    assert (aux >> 8) & 255 != convert(STATE_FLAGGED, uint256), "capsule: flagged"
    root: uint256 = self._root[previous_id]
    if root == 0:
        root = previous_id
    latest: uint256 = self._latest[root]
    if latest == 0:
        latest = root
    assert latest == previous_id, "capsule: not latest version"
    assert content_hash != empty(bytes32), "capsule: empty content hash"

    capsule_id: uint256 = self._next_id(g)
    self._globals = g + 1

    kind: uint8 = convert((aux >> 16) & _KIND_BITS, uint8)
    version: uint256 = ((aux >> 24) & masks.MASK32) + 1
    n: uint256 = aux & 255
    parents: DynArray[ICapsuleRegistry.Parent, 8] = self._parents(previous_id, aux)
    flags: uint256 = 0
    first: uint256 = self._by_hash[content_hash]
    if first == 0:
        self._by_hash[content_hash] = (capsule_id << 192) | self._store_parents(capsule_id, parents, True)
        flags = _AUX_INDEX_PARENTS
    else:
        # The chain's own earlier hash: its index entry stays the first capsule's.
        assert erc721_lean._owner_of(first >> 192) == msg.sender, "capsule: content hash exists"
        self._store_parents(capsule_id, parents, False)

    self._content_hash[capsule_id] = content_hash
    self._previous[capsule_id] = previous_id
    self._root[capsule_id] = root
    self._latest[root] = capsule_id
    erc721_lean._mint(msg.sender, capsule_id, self._pack_aux(block.timestamp, version, kind, STATE_ACTIVE, n) | flags)
    if len(uri) != 0:
        self._uri[capsule_id] = uri
    log ICapsuleRegistry.CapsuleMinted(
        capsule_id=capsule_id,
        creator=msg.sender,
        kind=kind,
        content_hash=content_hash,
        previous_id=previous_id,
        version=convert(version, uint32),
        parents=parents,
        uri=uri,
    )
    log IERC4906.MetadataUpdate(_tokenId=previous_id)
    return capsule_id


@external
def set_state(capsule_id: uint256, state: uint8, reason: bytes32):
    """
    @dev Changes a capsule's lifecycle state.
    @notice The owner may set ACTIVE, DEPRECATED or DISABLED unless the capsule is FLAGGED;
            an ARBITER may set FLAGGED, and may clear a flag to any owner state. A change
            to a different state is logged with its time (`state_at`); setting the current
            state again only emits the event.
    @param capsule_id The capsule.
    @param state The new state (1 ACTIVE, 2 DEPRECATED, 3 DISABLED, 4 FLAGGED).
    @param reason A short reason (e.g. a dispute id or a hash of the ruling).
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(capsule_id)
    assert owner != empty(address), "capsule: unknown capsule"
    assert state >= STATE_ACTIVE and state <= STATE_FLAGGED, "capsule: bad state"
    current: uint8 = convert((aux >> 8) & 255, uint8)
    is_arbiter: bool = access_control.hasRole[ARBITER_ROLE][msg.sender]
    if state == STATE_FLAGGED or current == STATE_FLAGGED:
        assert is_arbiter, "capsule: not arbiter"
    else:
        assert msg.sender == owner, "capsule: not owner"
    if state != current:
        # One fresh slot per change; the count lives in entry 1 (no separate head slot).
        entry: uint256 = (convert(state, uint256) << 64) | block.timestamp
        first: uint256 = self._state_log[capsule_id][1]
        n: uint256 = (first >> 72) + 1
        if n == 1:
            self._state_log[capsule_id][1] = (1 << 72) | entry
        else:
            self._state_log[capsule_id][n] = entry
            self._state_log[capsule_id][1] = (first & masks.MASK72) | (n << 72)
        erc721_lean._set_aux(capsule_id, (aux & ~convert(255 << 8, uint256)) | (convert(state, uint256) << 8))
    log ICapsuleRegistry.CapsuleStateChanged(capsule_id=capsule_id, state=state, by=msg.sender, reason=reason)
    log IERC4906.MetadataUpdate(_tokenId=capsule_id)


@external
def wire(license_manager_: address):
    """
    @dev Sets the LicenseManager that answers `can_derive` for derivative credentials
         (admin, once: it never changes afterwards).
    @notice Emits `Wired`. Reverts "capsule: already wired" the second time.
    @param license_manager_ The LicenseManager address.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    g: uint256 = self._globals
    assert (g >> 64) & masks.MASK160 == 0, "capsule: already wired"
    assert license_manager_ != empty(address), "capsule: zero address"
    self._globals = g | (convert(license_manager_, uint256) << 64)
    log ICapsuleRegistry.Wired(license_manager=license_manager_)


@external
def set_royalty_bps(royalty_bps_: uint256):
    """
    @dev Sets the ERC-2981 royalty paid to creators on secondary sales (admin).
    @param royalty_bps_ The royalty in basis points, at most 1,000.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert royalty_bps_ <= MAX_ROYALTY_BPS, "capsule: royalty too high"
    self.royalty_bps = royalty_bps_
    log ICapsuleRegistry.RoyaltyBpsSet(royalty_bps=royalty_bps_)


@external
def pause():
    """
    @dev Stops minting and versioning (PAUSER).
    @notice Reverts "capsule: paused" when already paused.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    g: uint256 = self._globals
    assert g & _G_PAUSED == 0, "capsule: paused"
    self._globals = g | _G_PAUSED
    log pausable.Paused(account=msg.sender)


@external
def unpause():
    """
    @dev Resumes minting and versioning (PAUSER).
    @notice Reverts "capsule: not paused" when not paused.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    g: uint256 = self._globals
    assert g & _G_PAUSED != 0, "capsule: not paused"
    self._globals = g & ~_G_PAUSED
    log pausable.Unpaused(account=msg.sender)


@external
@view
def paused() -> bool:
    """
    @dev Whether minting and versioning are paused.
    @return bool True if paused.
    """
    return self._globals & _G_PAUSED != 0


@external
@view
def next_id() -> uint256:
    """
    @dev The id the next capsule will get (ids start at 1).
    @return uint256 The next id.
    """
    return self._globals & masks.MASK64


@external
@view
def license_manager() -> address:
    """
    @dev The LicenseManager that vouches for derivative credentials (zero until `wire`, then fixed).
    @return address The LicenseManager.
    """
    return convert(convert((self._globals >> 64) & masks.MASK160, uint160), address)


@external
@view
def capsule(capsule_id: uint256) -> ICapsuleRegistry.Capsule:
    """
    @dev A capsule's immutable record.
    @param capsule_id The capsule.
    @return Capsule (kind, content_hash, creator, created_at, version, previous_id).
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(capsule_id)
    assert owner != empty(address), "capsule: unknown capsule"
    content_hash: bytes32 = self._content_hash[capsule_id]
    return ICapsuleRegistry.Capsule(
        kind=convert((aux >> 16) & _KIND_BITS, uint8),
        content_hash=content_hash,
        creator=self._creator(capsule_id, owner, aux),
        created_at=convert(aux >> 56, uint64),
        version=convert((aux >> 24) & masks.MASK32, uint32),
        previous_id=self._previous[capsule_id],
    )


@external
@view
def parents(capsule_id: uint256) -> DynArray[ICapsuleRegistry.Parent, 8]:
    """
    @dev A capsule's parents and their royalty shares.
    @param capsule_id The capsule.
    @return DynArray The parents (empty for a root capsule).
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(capsule_id)
    assert owner != empty(address), "capsule: unknown capsule"
    return self._parents(capsule_id, aux)


@external
@view
def owner_and_parents(capsule_id: uint256) -> (address, DynArray[ICapsuleRegistry.Parent, 8]):
    """
    @dev Current owner and parents in one call (what the RoyaltyRouter needs for one hop).
    @param capsule_id The capsule.
    @return address The current owner.
    @return DynArray The parents.
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(capsule_id)
    assert owner != empty(address), "capsule: unknown capsule"
    return owner, self._parents(capsule_id, aux)


@external
@view
def latest_version(capsule_id: uint256) -> uint256:
    """
    @dev The latest version of the chain `capsule_id` belongs to.
    @param capsule_id Any version of the chain.
    @return uint256 The latest version's id.
    """
    assert erc721_lean._owner_of(capsule_id) != empty(address), "capsule: unknown capsule"
    root: uint256 = self._root[capsule_id]
    if root == 0:
        root = capsule_id
    latest: uint256 = self._latest[root]
    if latest == 0:
        return root
    return latest


@external
@view
def state(capsule_id: uint256) -> uint8:
    """
    @dev A capsule's lifecycle state (0 if it does not exist).
    @param capsule_id The capsule.
    @return uint8 The state.
    """
    return convert((erc721_lean._aux(capsule_id) >> 8) & 255, uint8)


@external
@view
def state_at(capsule_id: uint256, at: uint256) -> uint8:
    """
    @dev The lifecycle state in force at unix time `at` (0 if the capsule did not exist
         then or does not exist). A state set at time T is in force from T on (so a capsule
         flagged at T reads FLAGGED at T). O(1) for `at` at or after the latest change;
         a binary search over the capsule's state-change log for older times.
    @notice What the LicenseManager asks to settle usage served before a flag and refuse
            usage served after it (`state_at(capsule_id, issued_at) == STATE_FLAGGED`).
    @param capsule_id The capsule.
    @param at A unix time.
    @return uint8 The state then (1 ACTIVE, 2 DEPRECATED, 3 DISABLED, 4 FLAGGED).
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(capsule_id)
    if owner == empty(address) or at < aux >> 56:
        return 0
    first: uint256 = self._state_log[capsule_id][1]
    n: uint256 = first >> 72
    if n == 0:
        return convert((aux >> 8) & 255, uint8)
    latest: uint256 = first
    if n > 1:
        latest = self._state_log[capsule_id][n]
    if at >= latest & masks.MASK64:
        return convert((aux >> 8) & 255, uint8)
    if at < first & masks.MASK64:
        return STATE_ACTIVE  # before the first change: the mint state
    # The last change k in [1, n - 1] made at or before `at` (change 1 qualifies).
    lo: uint256 = 1
    hi: uint256 = n - 1
    for _: uint256 in range(64):
        if lo >= hi:
            break
        mid: uint256 = (lo + hi + 1) // 2
        if self._state_log[capsule_id][mid] & masks.MASK64 <= at:
            lo = mid
        else:
            hi = mid - 1
    return convert((self._state_log[capsule_id][lo] >> 64) & 255, uint8)


@external
@view
def exists(capsule_id: uint256) -> bool:
    """
    @dev Whether `capsule_id` was minted.
    @param capsule_id The capsule.
    @return bool True if it exists.
    """
    return erc721_lean._owner_of(capsule_id) != empty(address)


@external
@view
def capsule_by_hash(content_hash: bytes32) -> uint256:
    """
    @dev The first capsule minted with `content_hash` (0 if none).
    @param content_hash The SHA-256 manifest hash.
    @return uint256 The capsule id.
    """
    return self._by_hash[content_hash] >> 192


@external
@view
def tokenURI(token_id: uint256) -> String[512]:
    """
    @dev The URI set at mint, else `ipfs://` + CIDv1(raw, sha2-256, content hash) in base32.
    @param token_id The capsule.
    @return String The URI.
    """
    assert erc721_lean._owner_of(token_id) != empty(address), "capsule: unknown capsule"
    uri: String[256] = self._uri[token_id]
    if len(uri) != 0:
        return uri
    return concat("ipfs://", self._cid(self._content_hash[token_id]))


@external
@view
def cid(content_hash: bytes32) -> String[59]:
    """
    @dev The CIDv1 (raw, sha2-256) of a content hash, multibase base32 (`b...`).
    @param content_hash A SHA-256 digest.
    @return String The CID string.
    """
    return self._cid(content_hash)


@external
@view
def royaltyInfo(token_id: uint256, sale_price: uint256) -> (address, uint256):
    """
    @dev ERC-2981: the creator receives `royalty_bps` of a secondary sale of the capsule token.
    @param token_id The capsule.
    @param sale_price The sale price.
    @return address The creator.
    @return uint256 The royalty amount.
    """
    owner: address = empty(address)
    aux: uint256 = 0
    owner, aux = erc721_lean._owner_and_aux(token_id)
    assert owner != empty(address), "capsule: unknown capsule"
    return self._creator(token_id, owner, aux), sale_price * self.royalty_bps // BPS


@internal
@pure
def _next_id(g: uint256) -> uint256:
    """
    @dev The next capsule id held in the `_globals` word `g` (ids stay below 2**64).
    @param g The `_globals` word.
    @return uint256 The id.
    """
    capsule_id: uint256 = g & masks.MASK64
    assert capsule_id < masks.MASK64, "capsule: too many capsules"
    return capsule_id


@internal
@pure
def _pack_aux(created_at: uint256, version: uint256, kind: uint8, state: uint8, n_parents: uint256) -> uint256:
    """
    @dev Packs the hot metadata kept beside the owner.
    @param created_at The mint timestamp.
    @param version The version number.
    @param kind The kind.
    @param state The lifecycle state.
    @param n_parents The parent count.
    @return uint256 The 96-bit aux word.
    """
    assert version <= masks.MASK32, "capsule: version overflow"
    return (
        ((created_at & masks.MASK40) << 56)
        | (version << 24)
        | (convert(kind, uint256) << 16)
        | (convert(state, uint256) << 8)
        | n_parents
    )


@internal
def _store_parents(capsule_id: uint256, parents: DynArray[ICapsuleRegistry.Parent, 8], in_index: bool) -> uint256:
    """
    @dev Writes the parents of a new capsule in lineage's layouts: with `in_index`, parents 0
         and 1 go to the returned bits of its content-hash index entry (the head word) and the
         rest to `_parent_slots` (the tail), else all to `_parent_slots` in words of three.
    @param capsule_id The new capsule.
    @param parents Its parents (checked by the caller).
    @param in_index Whether the capsule owns its content-hash index entry.
    @return uint256 The index-entry bits of parents 0 and 1 (0 without `in_index`).
    """
    # `lineage.entry` written out with the module's constants (no internal call per parent).
    n: uint256 = len(parents)
    base: uint256 = 0
    entry_bits: uint256 = 0
    if in_index:
        base = lineage.HEAD_PARENTS
    slot: uint256 = 0
    for i: uint256 in range(n, bound=lineage.MAX_PARENTS):
        entry: uint256 = parents[i].capsule_id | (convert(parents[i].share_bps, uint256) << lineage.ID_BITS)
        if i < base:
            entry_bits |= entry << (lineage.ENTRY_BITS * i)
            continue
        k: uint256 = i - base
        slot |= entry << (lineage.ENTRY_BITS * (k % lineage.PER_WORD))
        if k % lineage.PER_WORD == lineage.PER_WORD - 1 or i == n - 1:
            self._parent_slots[capsule_id][k // lineage.PER_WORD] = slot
            slot = 0
    return entry_bits


@internal
@view
def _parents(capsule_id: uint256, aux: uint256) -> DynArray[ICapsuleRegistry.Parent, 8]:
    """
    @dev Unpacks the parents of `capsule_id` (count and layout from its aux: lineage's head and
         tail with `_AUX_INDEX_PARENTS`, else words of three).
    @param capsule_id The capsule.
    @param aux Its aux word.
    @return DynArray The parents.
    """
    n: uint256 = aux & 255
    out: DynArray[ICapsuleRegistry.Parent, 8] = []
    if n == 0:
        return out
    base: uint256 = 0
    if aux & _AUX_INDEX_PARENTS != 0:
        base = lineage.HEAD_PARENTS
        entry_bits: uint256 = self._by_hash[self._content_hash[capsule_id]]
        for i: uint256 in range(lineage.HEAD_PARENTS):
            if i == n:
                break
            out.append(lineage.parent(entry_bits >> (lineage.ENTRY_BITS * i)))
    slot: uint256 = 0
    for i: uint256 in range(n, bound=lineage.MAX_PARENTS):
        if i < base:
            continue
        k: uint256 = i - base
        if k % lineage.PER_WORD == 0:
            slot = self._parent_slots[capsule_id][k // lineage.PER_WORD]
        out.append(lineage.parent(slot >> (lineage.ENTRY_BITS * (k % lineage.PER_WORD))))
    return out


@internal
@view
def _creator(capsule_id: uint256, owner: address, aux: uint256) -> address:
    """
    @dev A capsule's creator: its owner until its first transfer, then the one recorded then.
    @param capsule_id The capsule.
    @param owner Its current owner.
    @param aux Its aux word.
    @return address The creator.
    """
    if aux & _AUX_CREATOR_RECORDED != 0:
        return self._creator_override[capsule_id]
    return owner


@internal
def _record_creator(previous_owner: address, token_id: uint256):
    """
    @dev After a transfer: on the capsule's first one, records the creator (the previous owner,
         who held it since its mint) so that the creator outlives the transfer.
    @param previous_owner The owner the capsule was just moved from.
    @param token_id The capsule.
    """
    aux: uint256 = erc721_lean._aux(token_id)
    if aux & _AUX_CREATOR_RECORDED == 0:
        self._creator_override[token_id] = previous_owner
        erc721_lean._set_aux(token_id, aux | _AUX_CREATOR_RECORDED)


@internal
@pure
def _cid(content_hash: bytes32) -> String[59]:
    """
    @dev Multibase base32 (lower, unpadded) of 0x01 0x55 0x12 0x20 || content_hash.
    @param content_hash The SHA-256 digest.
    @return String `b` followed by 58 base32 characters.
    """
    hi: uint256 = _CID_PREFIX
    lo: uint256 = convert(content_hash, uint256)
    w0: uint256 = 0
    w1: uint256 = 0
    # 288 bits -> 58 symbols: symbol i holds bits [283 - 5i, 288 - 5i); the last is zero-padded.
    for i: uint256 in range(58):
        v: uint256 = 0
        if i == 57:
            v = (lo << 2) & 31
        else:
            sh: uint256 = 283 - 5 * i
            if sh >= 256:
                v = (hi >> (sh - 256)) & 31
            else:
                v = ((hi << (256 - sh)) | (lo >> sh)) & 31
        c: uint256 = 0
        if v < 26:
            c = 97 + v
        else:
            c = 24 + v
        if i < 32:
            w0 |= c << (8 * (31 - i))
        else:
            w1 |= c << (8 * (63 - i))
    raw: Bytes[64] = concat(convert(w0, bytes32), convert(w1, bytes32))
    return concat("b", convert(slice(raw, 0, 58), String[58]))
