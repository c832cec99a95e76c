"""CapsuleRegistry: minting, lineage, versions, lifecycle, ERC-721/165/2981/4906, CID URIs."""

from __future__ import annotations

import hashlib
import os

import ape
import pytest

from codexfield.cid import cid_from_digest
from codexfield.constants import CapsuleState

ZERO = "0x" + "00" * 20


def P(capsule_id: int, share_bps: int):
    return (capsule_id, share_bps)


# --- mint ---------------------------------------------------------------------------------


def test_mint__root_capsule__records_everything(registry, creator, mint_capsule, chain):
    h = os.urandom(32)
    cid = mint_capsule(creator, kind=2, content_hash=h)
    c = registry.capsule(cid)
    assert registry.ownerOf(cid) == creator
    assert (c.kind, c.content_hash, c.creator, c.version, c.previous_id) == (2, h, creator, 1, 0)
    assert c.created_at == chain.blocks.head.timestamp
    assert registry.state(cid) == CapsuleState.ACTIVE
    assert registry.exists(cid) and not registry.exists(cid + 1)
    assert registry.balanceOf(creator) >= 1
    assert registry.capsule_by_hash(h) == cid
    assert list(registry.parents(cid)) == []


def test_mint__emits_capsule_minted_with_all_fields(registry, creator, mint_capsule):
    a = mint_capsule(creator)
    h = os.urandom(32)
    tx = registry.mint(3, h, [P(a, 1500)], [], "https://example.org/m.json", sender=creator)
    ev = tx.events.filter(registry.CapsuleMinted)[0]
    assert ev.capsule_id == tx.return_value and ev.creator == creator and ev.kind == 3
    assert ev.content_hash == h and ev.previous_id == 0 and ev.version == 1
    assert [tuple(p) for p in ev.parents] == [(a, 1500)]
    assert ev.uri == "https://example.org/m.json"


def test_mint__ids_are_sequential(registry, creator, mint_capsule):
    a = mint_capsule(creator)
    b = mint_capsule(creator)
    assert b == a + 1 and registry.next_id() == b + 1


@pytest.mark.parametrize("kind", [0, 8, 255])
def test_mint__kind_out_of_range__reverts(registry, creator, kind):
    with ape.reverts("capsule: bad kind"):
        registry.mint(kind, os.urandom(32), [], [], "", sender=creator)


def test_mint__zero_content_hash__reverts(registry, creator):
    with ape.reverts("capsule: empty content hash"):
        registry.mint(1, b"\x00" * 32, [], [], "", sender=creator)


def test_mint__reused_content_hash__reverts(registry, creator, stranger, mint_capsule):
    h = os.urandom(32)
    mint_capsule(creator, content_hash=h)
    with ape.reverts("capsule: content hash exists"):
        registry.mint(1, h, [], [], "", sender=stranger)
    with ape.reverts("capsule: content hash exists"):
        registry.mint(1, h, [], [], "", sender=creator)


def test_mint__with_parents__stores_them_packed(registry, creator, mint_capsule):
    parents = [mint_capsule(creator) for _ in range(8)]
    shares = [100, 200, 300, 400, 500, 600, 700, 800]
    child = mint_capsule(creator, kind=2, parents=[P(p, s) for p, s in zip(parents, shares)])
    assert [tuple(p) for p in registry.parents(child)] == list(zip(parents, shares))
    owner, ps = registry.owner_and_parents(child)
    assert owner == creator and [tuple(p) for p in ps] == list(zip(parents, shares))


def test_mint__unknown_parent__reverts(registry, creator, mint_capsule):
    a = mint_capsule(creator)
    with ape.reverts("capsule: parent does not exist"):
        registry.mint(1, os.urandom(32), [P(a + 100, 10)], [], "", sender=creator)


def test_mint__duplicate_parent__reverts(registry, creator, mint_capsule):
    a = mint_capsule(creator)
    with ape.reverts("capsule: duplicate parent"):
        registry.mint(1, os.urandom(32), [P(a, 10), P(a, 20)], [], "", sender=creator)


def test_mint__shares_over_100_percent__revert(registry, creator, mint_capsule):
    a, b = mint_capsule(creator), mint_capsule(creator)
    with ape.reverts("capsule: shares exceed 100%"):
        registry.mint(1, os.urandom(32), [P(a, 6000), P(b, 4001)], [], "", sender=creator)
    child = mint_capsule(creator, parents=[P(a, 6000), P(b, 4000)])
    assert len(registry.parents(child)) == 2


def test_mint__parent_of_someone_else_without_credential__reverts(registry, creator, stranger, mint_capsule):
    a = mint_capsule(creator)
    with ape.reverts("capsule: not parent owner"):
        registry.mint(1, os.urandom(32), [P(a, 100)], [], "", sender=stranger)
    with ape.reverts("capsule: not parent owner"):
        registry.mint(1, os.urandom(32), [P(a, 100)], [0], "", sender=stranger)


def test_mint__credential_before_license_manager_is_wired__reverts(registry, creator, stranger, mint_capsule):
    a = mint_capsule(creator)
    with ape.reverts("capsule: no license manager"):
        registry.mint(1, os.urandom(32), [P(a, 100)], [7], "", sender=stranger)


def test_mint__credentials_length_mismatch__reverts(registry, creator, mint_capsule):
    a, b = mint_capsule(creator), mint_capsule(creator)
    with ape.reverts("capsule: credentials length mismatch"):
        registry.mint(1, os.urandom(32), [P(a, 1), P(b, 1)], [0], "", sender=creator)


def test_mint__when_paused__reverts_and_resumes_after_unpause(registry, admin, creator, mint_capsule):
    a = mint_capsule(creator)
    registry.pause(sender=admin)
    with ape.reverts("capsule: paused"):
        registry.mint(1, os.urandom(32), [], [], "", sender=creator)
    with ape.reverts("capsule: paused"):
        registry.publish_version(a, os.urandom(32), "", sender=creator)
    with ape.reverts("capsule: paused"):
        registry.pause(sender=admin)
    registry.unpause(sender=admin)
    with ape.reverts("capsule: not paused"):
        registry.unpause(sender=admin)
    assert registry.exists(mint_capsule(creator))


def test_pause__only_pauser(registry, stranger):
    with ape.reverts("access_control: account is missing role"):
        registry.pause(sender=stranger)


# --- versions -----------------------------------------------------------------------------


def test_publish_version__keeps_kind_and_parents_and_links_chain(registry, creator, mint_capsule):
    a, b = mint_capsule(creator), mint_capsule(creator)
    v1 = mint_capsule(creator, kind=2, parents=[P(a, 1000), P(b, 500)])
    tx = registry.publish_version(v1, os.urandom(32), "", sender=creator)
    v2 = tx.return_value
    c = registry.capsule(v2)
    assert (c.kind, c.version, c.previous_id, c.creator) == (2, 2, v1, creator)
    assert [tuple(p) for p in registry.parents(v2)] == [(a, 1000), (b, 500)]
    assert registry.latest_version(v1) == v2 and registry.latest_version(v2) == v2
    v3 = registry.publish_version(v2, os.urandom(32), "", sender=creator).return_value
    assert registry.latest_version(v1) == v3 and registry.capsule(v3).version == 3
    ev = tx.events.filter(registry.CapsuleMinted)[0]
    assert ev.previous_id == v1 and ev.version == 2 and [tuple(p) for p in ev.parents] == [(a, 1000), (b, 500)]
    assert len(tx.events.filter(registry.MetadataUpdate)) == 1


def test_publish_version__not_owner__reverts(registry, creator, stranger, mint_capsule):
    v1 = mint_capsule(creator)
    with ape.reverts("capsule: not owner"):
        registry.publish_version(v1, os.urandom(32), "", sender=stranger)


def test_publish_version__not_latest__reverts(registry, creator, mint_capsule):
    v1 = mint_capsule(creator)
    registry.publish_version(v1, os.urandom(32), "", sender=creator)
    with ape.reverts("capsule: not latest version"):
        registry.publish_version(v1, os.urandom(32), "", sender=creator)


def test_publish_version__unknown_capsule__reverts(registry, creator):
    with ape.reverts("capsule: unknown capsule"):
        registry.publish_version(10**6, os.urandom(32), "", sender=creator)


def test_publish_version__reused_hash_by_its_owner__allowed_and_creator_kept(registry, creator, mint_capsule):
    h = os.urandom(32)
    v1 = mint_capsule(creator, content_hash=h)
    v2 = registry.publish_version(v1, h, "ipfs://bafy-new-metadata", sender=creator).return_value
    assert registry.capsule(v2).content_hash == h and registry.capsule(v2).creator == creator
    assert registry.capsule(v1).creator == creator
    assert registry.capsule_by_hash(h) == v1
    assert registry.tokenURI(v2) == "ipfs://bafy-new-metadata"


def test_publish_version__reused_hash_of_another_owner__reverts(registry, creator, stranger, mint_capsule):
    h = os.urandom(32)
    mint_capsule(creator, content_hash=h)
    mine = mint_capsule(stranger)
    with ape.reverts("capsule: content hash exists"):
        registry.publish_version(mine, h, "", sender=stranger)


def test_publish_version__after_transfer__new_owner_versions(registry, creator, stranger, mint_capsule):
    v1 = mint_capsule(creator)
    registry.transferFrom(creator, stranger, v1, sender=creator)
    v2 = registry.publish_version(v1, os.urandom(32), "", sender=stranger).return_value
    assert registry.ownerOf(v2) == stranger and registry.capsule(v2).creator == stranger
    assert registry.capsule(v1).creator == creator


# --- lifecycle ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", [CapsuleState.DEPRECATED, CapsuleState.DISABLED, CapsuleState.ACTIVE])
def test_set_state__owner_states__by_owner(registry, creator, mint_capsule, state):
    cid = mint_capsule(creator)
    tx = registry.set_state(cid, state, b"\x01" * 32, sender=creator)
    assert registry.state(cid) == state
    ev = tx.events.filter(registry.CapsuleStateChanged)[0]
    assert (ev.capsule_id, ev.state, ev.by, ev.reason) == (cid, state, creator, b"\x01" * 32)
    assert tx.events.filter(registry.MetadataUpdate)[0]._tokenId == cid


def test_set_state__not_owner__reverts(registry, creator, stranger, mint_capsule):
    cid = mint_capsule(creator)
    with ape.reverts("capsule: not owner"):
        registry.set_state(cid, CapsuleState.DISABLED, b"", sender=stranger)


def test_set_state__flag__only_arbiter_and_owner_cannot_clear(registry, admin, creator, mint_capsule):
    cid = mint_capsule(creator)
    with ape.reverts("capsule: not arbiter"):
        registry.set_state(cid, CapsuleState.FLAGGED, b"", sender=creator)
    registry.set_state(cid, CapsuleState.FLAGGED, b"dispute-1".ljust(32, b"\0"), sender=admin)
    assert registry.state(cid) == CapsuleState.FLAGGED
    with ape.reverts("capsule: not arbiter"):
        registry.set_state(cid, CapsuleState.ACTIVE, b"", sender=creator)
    registry.set_state(cid, CapsuleState.ACTIVE, b"", sender=admin)
    assert registry.state(cid) == CapsuleState.ACTIVE


@pytest.mark.parametrize("state", [0, 5])
def test_set_state__bad_state__reverts(registry, creator, mint_capsule, state):
    cid = mint_capsule(creator)
    with ape.reverts("capsule: bad state"):
        registry.set_state(cid, state, b"", sender=creator)


def test_set_state__state_survives_transfer(registry, creator, stranger, mint_capsule):
    cid = mint_capsule(creator, kind=4)
    registry.set_state(cid, CapsuleState.DEPRECATED, b"", sender=creator)
    registry.transferFrom(creator, stranger, cid, sender=creator)
    assert registry.state(cid) == CapsuleState.DEPRECATED and registry.capsule(cid).kind == 4


def test_set_state__unknown_capsule__reverts(registry, creator):
    with ape.reverts("capsule: unknown capsule"):
        registry.set_state(10**6, 1, b"", sender=creator)


# --- ERC-721 / 165 / 2981 / URIs ---------------------------------------------------------


def test_transfer__approved_operator_moves_capsule(registry, creator, stranger, licensor, mint_capsule):
    cid = mint_capsule(creator)
    registry.approve(stranger, cid, sender=creator)
    assert registry.getApproved(cid) == stranger
    registry.transferFrom(creator, licensor, cid, sender=stranger)
    assert registry.ownerOf(cid) == licensor and registry.getApproved(cid) == ZERO
    registry.setApprovalForAll(stranger, True, sender=licensor)
    registry.safeTransferFrom(licensor, creator, cid, sender=stranger)
    assert registry.ownerOf(cid) == creator


def test_transfer__unapproved__reverts(registry, creator, stranger, mint_capsule):
    cid = mint_capsule(creator)
    with ape.reverts("erc721: caller is not token owner or approved"):
        registry.transferFrom(creator, stranger, cid, sender=stranger)
    with ape.reverts("erc721: transfer from incorrect owner"):
        registry.transferFrom(stranger, creator, cid, sender=creator)
    with ape.reverts("erc721: transfer to the zero address"):
        registry.transferFrom(creator, ZERO, cid, sender=creator)


def test_owner_of__unknown__reverts(registry):
    with ape.reverts("erc721: invalid token ID"):
        registry.ownerOf(10**9)


@pytest.mark.parametrize(
    "iface,expected",
    [
        ("0x01ffc9a7", True),
        ("0x80ac58cd", True),
        ("0x5b5e139f", True),
        ("0x2a55205a", True),
        ("0x49064906", True),
        ("0x780e9d63", False),
        ("0xffffffff", False),
    ],
)
def test_supports_interface(registry, iface, expected):
    assert registry.supportsInterface(iface) is expected


def test_royalty_info__pays_creator_even_after_transfer(registry, admin, creator, stranger, mint_capsule):
    cid = mint_capsule(creator)
    registry.transferFrom(creator, stranger, cid, sender=creator)
    receiver, amount = registry.royaltyInfo(cid, 10_000)
    assert receiver == creator and amount == 500
    registry.set_royalty_bps(250, sender=admin)
    assert registry.royaltyInfo(cid, 10_000)[1] == 250
    with ape.reverts("capsule: royalty too high"):
        registry.set_royalty_bps(1001, sender=admin)
    with ape.reverts("access_control: account is missing role"):
        registry.set_royalty_bps(1, sender=stranger)


def test_creator__recorded_by_the_first_transfer__kept_through_later_ones(
    registry, creator, stranger, licensor, mint_capsule
):
    cid = mint_capsule(creator)
    assert registry.capsule(cid).creator == creator
    registry.safeTransferFrom(creator, stranger, cid, sender=creator)
    registry.transferFrom(stranger, licensor, cid, sender=stranger)
    registry.transferFrom(licensor, creator, cid, sender=licensor)
    registry.transferFrom(creator, stranger, cid, sender=creator)
    assert registry.capsule(cid).creator == creator and registry.royaltyInfo(cid, 10_000)[0] == creator
    assert registry.ownerOf(cid) == stranger and registry.state(cid) == CapsuleState.ACTIVE


@pytest.mark.parametrize("reuse_hash", [False, True])
def test_publish_version__five_parents__kept_whether_the_hash_is_new_or_reused(
    registry, creator, mint_capsule, reuse_hash
):
    ps = [P(mint_capsule(creator), 100 * (i + 1)) for i in range(5)]
    h = os.urandom(32)
    v1 = mint_capsule(creator, kind=4, parents=ps, content_hash=h)
    v2 = registry.publish_version(v1, h if reuse_hash else os.urandom(32), "", sender=creator).return_value
    v3 = registry.publish_version(v2, os.urandom(32), "", sender=creator).return_value
    for v in (v1, v2, v3):
        assert [tuple(p) for p in registry.parents(v)] == [tuple(p) for p in ps]
        assert registry.capsule(v).kind == 4 and registry.capsule(v).creator == creator
    assert registry.capsule_by_hash(h) == v1


def test_token_uri__derived_cid_matches_python(registry, creator, mint_capsule):
    manifest = b'{"name":"demo"}'
    h = hashlib.sha256(manifest).digest()
    cid = mint_capsule(creator, content_hash=h)
    assert registry.tokenURI(cid) == "ipfs://" + cid_from_digest(h)


def test_token_uri__explicit_uri_wins(registry, creator, mint_capsule):
    cid = mint_capsule(creator, uri="ar://abc")
    assert registry.tokenURI(cid) == "ar://abc"


def test_token_uri__unknown__reverts(registry):
    with ape.reverts("capsule: unknown capsule"):
        registry.tokenURI(10**9)


def test_wire__admin_only_once_and_emits(registry, admin, stranger, licensor):
    with ape.reverts("access_control: account is missing role"):
        registry.wire(stranger, sender=stranger)
    with ape.reverts("capsule: zero address"):
        registry.wire(ZERO, sender=admin)
    tx = registry.wire(stranger, sender=admin)
    assert registry.license_manager() == stranger
    assert [e.license_manager for e in tx.events.filter(registry.Wired)] == [stranger.address]
    with ape.reverts("capsule: already wired"):
        registry.wire(licensor, sender=admin)
    assert registry.license_manager() == stranger


def test_constructor__handover_checkable_from_role_events(project, accounts, role_holders):
    deployer, timelock = accounts[8], accounts[9]
    reg = deployer.deploy(project.CapsuleRegistry, timelock, 0)
    roles = (reg.DEFAULT_ADMIN_ROLE(), reg.ARBITER_ROLE(), reg.PAUSER_ROLE())
    assert role_holders(reg) == {(bytes(r), timelock.address) for r in roles}


# --- FLAGGED capsules (issue 12, Low) -----------------------------------------------------


def _flag(registry, arbiter_admin, cid):
    registry.set_state(cid, CapsuleState.FLAGGED, b"dispute".ljust(32, b"\0"), sender=arbiter_admin)


def test_mint__flagged_parent__refused_for_owner_and_credential_holder(
    registry, admin, creator, stranger, mint_capsule
):
    a = mint_capsule(creator)
    _flag(registry, admin, a)
    with ape.reverts("capsule: parent flagged"):
        registry.mint(1, os.urandom(32), [P(a, 100)], [], "", sender=creator)
    with ape.reverts("capsule: parent flagged"):  # refused before any credential is asked about
        registry.mint(1, os.urandom(32), [P(a, 100)], [7], "", sender=stranger)
    registry.set_state(a, CapsuleState.ACTIVE, b"", sender=admin)  # the arbiter clears the flag
    assert registry.exists(mint_capsule(creator, parents=[P(a, 100)]))


def test_publish_version__flagged__refused(registry, admin, creator, mint_capsule):
    a = mint_capsule(creator)
    _flag(registry, admin, a)
    with ape.reverts("capsule: flagged"):
        registry.publish_version(a, os.urandom(32), "", sender=creator)


def _ts(chain, tx):
    return chain.blocks[tx.block_number].timestamp


def test_state_at__flag_then_clear__answers_each_moment(registry, admin, creator, mint_capsule, chain):
    cid = mint_capsule(creator)
    t0 = registry.capsule(cid).created_at
    assert registry.state_at(cid, t0 - 1) == 0  # before it existed
    assert registry.state_at(cid, t0) == CapsuleState.ACTIVE
    chain.pending_timestamp += 100
    t1 = _ts(chain, registry.set_state(cid, CapsuleState.FLAGGED, b"", sender=admin))
    chain.pending_timestamp += 100
    t2 = _ts(chain, registry.set_state(cid, CapsuleState.ACTIVE, b"", sender=admin))
    assert t0 < t1 < t2
    assert registry.state_at(cid, t1 - 1) == CapsuleState.ACTIVE  # usage before the flag stays payable
    assert registry.state_at(cid, t1) == CapsuleState.FLAGGED  # from the flag's second on: refused
    assert registry.state_at(cid, t2 - 1) == CapsuleState.FLAGGED
    assert registry.state_at(cid, t2) == CapsuleState.ACTIVE
    assert registry.state_at(cid, 2**64) == CapsuleState.ACTIVE
    assert registry.state_at(10**9, t2) == 0  # unknown capsule


def test_state_at__same_state_again__logs_no_change(registry, admin, creator, mint_capsule, chain):
    cid = mint_capsule(creator)
    t0 = registry.capsule(cid).created_at
    chain.pending_timestamp += 50
    t1 = _ts(chain, registry.set_state(cid, CapsuleState.FLAGGED, b"", sender=admin))
    chain.pending_timestamp += 50
    tx = registry.set_state(cid, CapsuleState.FLAGGED, b"again", sender=admin)  # still emits
    assert tx.events.filter(registry.CapsuleStateChanged)
    assert registry.state_at(cid, t1 + 10) == CapsuleState.FLAGGED  # flagged since t1, not since now
    assert registry.state_at(cid, t1 - 1) == CapsuleState.ACTIVE and t1 - 1 >= t0


def test_state_at__long_history__matches_model_at_every_boundary(registry, admin, creator, mint_capsule, chain):
    """40 changes with uneven gaps (some in the same second): the binary search over the log
    answers like a linear scan of the model at each change, just before it and between."""
    cid = mint_capsule(creator)
    model = [(registry.capsule(cid).created_at, CapsuleState.ACTIVE)]
    states = [
        CapsuleState.DEPRECATED,
        CapsuleState.FLAGGED,
        CapsuleState.ACTIVE,
        CapsuleState.DISABLED,
        CapsuleState.FLAGGED,
        CapsuleState.DEPRECATED,
    ]
    for i in range(40):
        state = states[i % len(states)]
        if i % 7 != 3:  # every 7th change shares the previous change's second
            chain.pending_timestamp += 1 + (i * 37) % 90
        by = admin if CapsuleState.FLAGGED in (state, model[-1][1]) else creator
        t = _ts(chain, registry.set_state(cid, state, b"", sender=by))
        model.append((t, state))

    def expected(at):
        out = 0
        for t, st in model:
            if t <= at:
                out = st
        return out

    for t, _ in model:
        for at in (t - 1, t, t + 1):
            assert registry.state_at(cid, at) == expected(at), at


def test_constructor__timelock_admin_gets_roles_deployer_keeps_none(project, accounts):
    deployer, timelock = accounts[8], accounts[9]
    reg = deployer.deploy(project.CapsuleRegistry, timelock, 0)
    admin_role = reg.DEFAULT_ADMIN_ROLE()
    assert reg.hasRole(admin_role, timelock) and not reg.hasRole(admin_role, deployer)
    assert reg.hasRole(reg.ARBITER_ROLE(), timelock) and reg.hasRole(reg.PAUSER_ROLE(), timelock)
