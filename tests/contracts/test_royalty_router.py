"""RoyaltyRouter: unit and adversarial tests (DESIGN §3.5)."""

from __future__ import annotations

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from codexfield.royalty import breakdown, load_graph_from_chain, split

CREDITOR = keccak(text="CREDITOR")
PAUSER = keccak(text="PAUSER")
ZERO = "0x0000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def router(deploy_router):
    """A router wired to two EOAs standing in for the LicenseManager (accounts[8]) and the
    UsageMeter (accounts[9])."""
    return deploy_router()


@pytest.fixture(scope="module")
def creditor(accounts, router):
    """The EOA wired as the UsageMeter."""
    return accounts[9]


@pytest.fixture(scope="module")
def lm_creditor(accounts, router):
    """The EOA wired as the LicenseManager."""
    return accounts[8]


# Every state-changing function of the router, by who may call it.
ADMIN_FUNCTIONS = {
    "grantRole",
    "revokeRole",
    "renounceRole",
    "set_role_admin",
    "set_token_allowed",
    "pause",
    "unpause",
    "wire",
}
OPEN_FUNCTIONS = {"pay", "credit", "propagate", "propagate_many", "claim"}


@pytest.fixture
def fund(usdc, router):
    def _fund(payer, amount):
        usdc.mint(payer, amount, sender=payer)
        usdc.approve(router, amount, sender=payer)

    return _fund


@pytest.fixture
def family(creator, mint_capsule):
    """root <- mid (30%) <- leaf (10% to mid, 5% to root)."""
    root = mint_capsule(creator)
    mid = mint_capsule(creator, parents=[(root, 3000)])
    leaf = mint_capsule(creator, parents=[(mid, 1000), (root, 500)])
    return root, mid, leaf


def _call(contract, name, *args):
    """Calldata of contract.name(*args) (selector + ABI-encoded args)."""
    abi = contract.contract_type.mutable_methods[name]
    types = [i.canonical_type for i in abi.inputs]
    selector = keccak(text=f"{name}({','.join(types)})")[:4]
    return selector + encode(types, list(args))


# ----------------------------------------------------------------------------------- deploy


def test_deploy__zero_registry__reverts(project, admin, deploy_reverts):
    deploy_reverts(admin, project.RoyaltyRouter, ZERO, admin, reason="royalty: zero registry")


def test_deploy__zero_admin__reverts(project, admin, registry, deploy_reverts):
    deploy_reverts(admin, project.RoyaltyRouter, registry, ZERO, reason="royalty: zero admin")


def test_deploy__admin_gets_roles__deployer_renounces(project, admin, stranger, registry, role_holders):
    r = stranger.deploy(project.RoyaltyRouter, registry, admin)
    assert r.hasRole(b"\x00" * 32, admin) and r.hasRole(PAUSER, admin)
    assert not r.hasRole(b"\x00" * 32, stranger)
    assert r.registry() == registry.address
    # The deploy transaction's role events alone show the handover (issue 12, Medium 6).
    assert role_holders(r) == {(b"\x00" * 32, admin.address), (PAUSER, admin.address)}
    assert r.license_manager() == ZERO and r.usage_meter() == ZERO  # not wired yet


# ----------------------------------------------------------------------------------- wire


def test_wire__once__emits_and_fixes_the_creditors(project, admin, registry, accounts):
    r = admin.deploy(project.RoyaltyRouter, registry, admin)
    tx = r.wire(accounts[8], accounts[9], sender=admin)
    ev = tx.events.filter(r.Wired)
    assert [(e.license_manager, e.usage_meter) for e in ev] == [(accounts[8].address, accounts[9].address)]
    assert (r.license_manager(), r.usage_meter()) == (accounts[8].address, accounts[9].address)
    with ape.reverts("royalty: already wired"):
        r.wire(admin, admin, sender=admin)
    assert (r.license_manager(), r.usage_meter()) == (accounts[8].address, accounts[9].address)


def test_wire__stranger__reverts(project, admin, registry, stranger):
    r = admin.deploy(project.RoyaltyRouter, registry, admin)
    with ape.reverts("access_control: account is missing role"):
        r.wire(stranger, stranger, sender=stranger)


def test_wire__zero_address__reverts(project, admin, registry, stranger):
    r = admin.deploy(project.RoyaltyRouter, registry, admin)
    with ape.reverts("royalty: zero address"):
        r.wire(ZERO, stranger, sender=admin)
    with ape.reverts("royalty: zero address"):
        r.wire(stranger, ZERO, sender=admin)


# ----------------------------------------------------------------------------------- allow-list


def test_set_token_allowed__admin__emits_and_sets(router, admin, deploy_token):
    t = deploy_token("DAI", 18)
    tx = router.set_token_allowed(t, True, sender=admin)
    assert router.token_allowed(t)
    assert [(e.token, e.allowed) for e in tx.events if e.event_name == "TokenAllowed"] == [(t.address, True)]
    router.set_token_allowed(t, False, sender=admin)
    assert not router.token_allowed(t)


def test_set_token_allowed__stranger__reverts(router, stranger, usdc):
    with ape.reverts("access_control: account is missing role"):
        router.set_token_allowed(usdc, False, sender=stranger)


def test_set_token_allowed__zero_token__reverts(router, admin):
    with ape.reverts("royalty: zero token"):
        router.set_token_allowed(ZERO, True, sender=admin)


MAX_BALANCE = 2**127 - 1  # the claimable has 127 bits beside the live bit


def test_max_balance__is_2_127_minus_1(router):
    assert router.MAX_BALANCE() == MAX_BALANCE


def test_set_token_allowed__supply_over_max_balance__reverts(router, admin, deploy_token):
    t = deploy_token("BIG", 18)
    t.mint(admin, MAX_BALANCE + 1, sender=admin)
    with ape.reverts("royalty: supply too large"):
        router.set_token_allowed(t, True, sender=admin)


def test_set_token_allowed__supply_at_max_balance__allowed(router, admin, deploy_token):
    t = deploy_token("MAX", 18)
    t.mint(admin, MAX_BALANCE, sender=admin)
    router.set_token_allowed(t, True, sender=admin)
    assert router.token_allowed(t)


# ----------------------------------------------------------------------------------- pay


def test_pay__allowed_token__credits_vault_and_logs(router, usdc, creator, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, 1_000)
    tx = router.pay(c, usdc, 1_000, sender=consumer)
    assert router.vault(c, usdc) == 1_000 and router.claimable(c, usdc) == 0
    assert usdc.balanceOf(router) == 1_000 and usdc.balanceOf(consumer) == 0
    ev = [e for e in tx.events if e.event_name == "RoyaltyCredited"]
    assert len(ev) == 1
    assert (ev[0].capsule_id, ev[0].token, ev[0].amount, ev[0].payer) == (c, usdc.address, 1_000, consumer.address)


def test_pay__disallowed_token__reverts(router, creator, consumer, mint_capsule, deploy_token):
    t = deploy_token("XYZ", 18)
    c = mint_capsule(creator)
    t.mint(consumer, 10, sender=consumer)
    t.approve(router, 10, sender=consumer)
    with ape.reverts("royalty: token not allowed"):
        router.pay(c, t, 10, sender=consumer)


def test_pay__zero_amount__reverts(router, usdc, creator, consumer, mint_capsule):
    c = mint_capsule(creator)
    with ape.reverts("royalty: zero amount"):
        router.pay(c, usdc, 0, sender=consumer)


def test_pay__unknown_capsule__reverts(router, usdc, consumer, fund):
    fund(consumer, 10)
    with ape.reverts("royalty: unknown capsule"):
        router.pay(10**9, usdc, 10, sender=consumer)


def test_pay__paused__reverts(router, usdc, admin, creator, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, 10)
    router.pause(sender=admin)
    with ape.reverts("royalty: paused"):
        router.pay(c, usdc, 10, sender=consumer)
    router.unpause(sender=admin)
    router.pay(c, usdc, 10, sender=consumer)
    assert router.vault(c, usdc) == 10


def test_pay__without_allowance__reverts(router, usdc, creator, consumer, mint_capsule):
    c = mint_capsule(creator)
    usdc.mint(consumer, 10, sender=consumer)
    with ape.reverts():
        router.pay(c, usdc, 10, sender=consumer)
    assert router.vault(c, usdc) == 0


def test_pay__fee_on_transfer_token__reverts(project, router, admin, creator, consumer, mint_capsule):
    t = admin.deploy(project.MockFeeOnTransferToken, 100)  # 1% burned per transfer
    router.set_token_allowed(t, True, sender=admin)
    c = mint_capsule(creator)
    t.mint(consumer, 10_000, sender=consumer)
    t.approve(router, 10_000, sender=consumer)
    with ape.reverts("royalty: fee-on-transfer token"):
        router.pay(c, t, 10_000, sender=consumer)
    assert router.vault(c, t) == 0 and t.balanceOf(router) == 0


def test_pay__vault_over_max_balance__reverts(router, usdc, creator, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, MAX_BALANCE + 1)
    router.pay(c, usdc, MAX_BALANCE, sender=consumer)
    assert router.vault(c, usdc) == MAX_BALANCE and router.claimable(c, usdc) == 0
    with ape.reverts("royalty: balance overflow"):
        router.pay(c, usdc, 1, sender=consumer)


def test_balances__at_max_balance__propagate_and_claim_exactly_live_bit_hidden(
    router, usdc, creator, consumer, stranger, mint_capsule, fund
):
    """The boundary of the packed slot: MAX_BALANCE in the vault, then in the claimable, then paid out;
    the live bit never shows in a view and never becomes part of an amount."""
    c = mint_capsule(creator)
    fund(consumer, MAX_BALANCE)
    router.pay(c, usdc, MAX_BALANCE, sender=consumer)
    router.propagate(c, usdc, sender=stranger)
    assert router.vault(c, usdc) == 0 and router.claimable(c, usdc) == MAX_BALANCE
    before = usdc.balanceOf(creator)
    assert router.claim(c, usdc, creator, sender=creator).return_value == MAX_BALANCE
    assert usdc.balanceOf(creator) - before == MAX_BALANCE and usdc.balanceOf(router) == 0
    assert router.vault(c, usdc) == 0 and router.claimable(c, usdc) == 0
    assert router.claim(c, usdc, creator, sender=creator).return_value == 0


def test_claim__leaves_slot_live__next_credit_is_no_fresh_write(
    router, usdc, creator, consumer, creditor, mint_capsule, fund
):
    """After a full claim the slot keeps its live bit: the next credit writes non-zero to non-zero."""
    c, fresh = mint_capsule(creator), mint_capsule(creator)
    fund(consumer, 10)
    router.pay(c, usdc, 10, sender=consumer)
    router.claim(c, usdc, creator, sender=creator)
    assert (router.vault(c, usdc), router.claimable(c, usdc)) == (0, 0)
    usdc.mint(router, 14, sender=creditor)
    again = router.credit(c, usdc, 7, sender=creditor).gas_used
    first = router.credit(fresh, usdc, 7, sender=creditor).gas_used
    assert first - again >= 17_000  # a fresh slot costs 20,000, a live one 2,900
    assert router.vault(c, usdc) == 7 and router.vault(fresh, usdc) == 7


def test_pay__live_slot__skips_registry_but_unknown_capsule_still_reverts(
    router, usdc, creator, consumer, mint_capsule, fund
):
    c = mint_capsule(creator)
    fund(consumer, 20)
    router.pay(c, usdc, 10, sender=consumer)
    router.pay(c, usdc, 10, sender=consumer)  # live slot: no registry call needed
    assert router.vault(c, usdc) == 20
    with ape.reverts("royalty: unknown capsule"):
        router.pay(10**9 + 7, usdc, 1, sender=consumer)


def test_claim__never_credited__returns_zero(router, usdc, creator, mint_capsule):
    c = mint_capsule(creator)
    tx = router.claim(c, usdc, creator, sender=creator)
    assert tx.return_value == 0 and not [e for e in tx.events if e.event_name == "RoyaltyClaimed"]
    assert (router.vault(c, usdc), router.claimable(c, usdc)) == (0, 0)


# ----------------------------------------------------------------------------------- credit


def test_credit__creditor__adds_to_vault_and_logs(router, usdc, creator, creditor, mint_capsule):
    c = mint_capsule(creator)
    usdc.mint(router, 500, sender=creditor)  # the creditor sends first
    tx = router.credit(c, usdc, 500, sender=creditor)
    tx2 = router.credit(c, usdc, 0, sender=creditor)
    assert router.vault(c, usdc) == 500
    ev = [e for e in tx.events if e.event_name == "RoyaltyCredited"]
    assert [(e.capsule_id, e.amount, e.payer) for e in ev] == [(c, 500, creditor.address)]
    assert not [e for e in tx2.events if e.event_name == "RoyaltyCredited"]  # zero is a no-op


def test_credit__license_manager_creditor__adds_to_vault(router, usdc, creator, lm_creditor, mint_capsule):
    c = mint_capsule(creator)
    usdc.mint(router, 7, sender=lm_creditor)
    router.credit(c, usdc, 7, sender=lm_creditor)
    assert router.vault(c, usdc) == 7


def test_credit__not_wired_caller__reverts(router, usdc, creator, stranger, admin, mint_capsule):
    c = mint_capsule(creator)
    for who in (stranger, admin):
        with ape.reverts("royalty: not creditor"):
            router.credit(c, usdc, 1, sender=who)


def test_credit__before_wire__nobody_may_credit(project, admin, registry, usdc, creator, mint_capsule):
    r = admin.deploy(project.RoyaltyRouter, registry, admin)
    c = mint_capsule(creator)
    with ape.reverts("royalty: not creditor"):
        r.credit(c, usdc, 1, sender=admin)


def test_credit__paused_and_token_delisted__still_settles(
    router, usdc, admin, creator, creditor, lm_creditor, mint_capsule
):
    """Issue 12 Medium 4: neither the pause nor the allow-list stops the wired creditors, so
    usage already served settles whatever governance does (`pay` alone is stopped)."""
    c = mint_capsule(creator)
    usdc.mint(router, 30, sender=creditor)
    router.pause(sender=admin)
    router.set_token_allowed(usdc, False, sender=admin)
    router.credit(c, usdc, 10, sender=creditor)
    router.credit(c, usdc, 20, sender=lm_creditor)
    assert router.vault(c, usdc) == 30
    assert router.paused() and not router.token_allowed(usdc)


def test_credit__token_never_allowed__still_settles(router, creator, creditor, mint_capsule, deploy_token):
    """The allow-list gates `pay` and new terms only: a creditor's token is the terms' token."""
    c = mint_capsule(creator)
    xyz = deploy_token("XYZ", 18)
    xyz.mint(router, 5, sender=creditor)
    router.credit(c, xyz, 5, sender=creditor)
    assert router.vault(c, xyz) == 5


def test_pause__stranger__reverts(router, stranger):
    with ape.reverts("access_control: account is missing role"):
        router.pause(sender=stranger)
    with ape.reverts("access_control: account is missing role"):
        router.unpause(sender=stranger)


def test_pause__twice__reverts_with_prefix(router, admin):
    router.pause(sender=admin)
    with ape.reverts("royalty: paused"):
        router.pause(sender=admin)
    router.unpause(sender=admin)
    with ape.reverts("royalty: not paused"):
        router.unpause(sender=admin)


# ----------------------------------------------------------------------------------- governance


def test_governance__mutating_functions__are_exactly_the_known_ones(router):
    """Pins the surface the next test walks: a new state-changing function fails here until it
    is classified (and, if it is an admin one, tried against the funds below)."""
    assert {m.name for m in router.contract_type.mutable_methods} == ADMIN_FUNCTIONS | OPEN_FUNCTIONS


def test_governance__admin_cannot_credit_itself_or_reach_funds(
    router, usdc, admin, creator, consumer, stranger, mint_capsule, fund
):
    """Issue 12 Medium 7: the admin grants itself the old CREDITOR role (any bytes32 role can be
    granted), credits tokens it never sent, re-wires, and calls every admin function; none of
    it moves a vault, a claimable or a token, and the owner still claims everything."""
    c = mint_capsule(creator)
    fund(consumer, 1_000)
    router.pay(c, usdc, 600, sender=consumer)
    router.propagate(c, usdc, sender=stranger)
    router.pay(c, usdc, 400, sender=consumer)
    before = (router.vault(c, usdc), router.claimable(c, usdc), usdc.balanceOf(router), usdc.balanceOf(admin))
    assert before[:3] == (400, 600, 1_000)

    router.grantRole(CREDITOR, admin, sender=admin)
    assert router.hasRole(CREDITOR, admin)  # a role nobody reads
    with ape.reverts("royalty: not creditor"):
        router.credit(c, usdc, 10**6, sender=admin)
    with ape.reverts("royalty: already wired"):
        router.wire(admin, admin, sender=admin)

    # Every admin function, with the admin holding every role it can give itself.
    tried = set()
    router.set_role_admin(CREDITOR, PAUSER, sender=admin)
    tried.add("set_role_admin")
    router.grantRole(PAUSER, stranger, sender=admin)
    tried.add("grantRole")
    router.revokeRole(PAUSER, stranger, sender=admin)
    tried.add("revokeRole")
    router.set_token_allowed(usdc, False, sender=admin)
    router.set_token_allowed(usdc, True, sender=admin)
    tried.add("set_token_allowed")
    router.pause(sender=admin)
    tried.add("pause")
    router.unpause(sender=admin)
    tried.add("unpause")
    tried.add("wire")  # above: already wired
    for who in (admin, stranger):
        with ape.reverts("royalty: not creditor"):
            router.credit(c, usdc, 1, sender=who)
    with ape.reverts("royalty: not owner"):
        router.claim(c, usdc, admin, sender=admin)
    router.renounceRole(CREDITOR, admin, sender=admin)
    tried.add("renounceRole")
    assert tried == ADMIN_FUNCTIONS

    after = (router.vault(c, usdc), router.claimable(c, usdc), usdc.balanceOf(router), usdc.balanceOf(admin))
    assert after == before
    assert router.claim(c, usdc, creator, sender=creator).return_value == 1_000


# ----------------------------------------------------------------------------------- propagate


def test_propagate__one_hop__cumulative_rounding_sums_exactly(router, usdc, creator, consumer, mint_capsule, fund):
    a, b, c = (mint_capsule(creator) for _ in range(3))
    child = mint_capsule(creator, parents=[(a, 3333), (b, 3333), (c, 3333)])
    fund(consumer, 10)
    router.pay(child, usdc, 10, sender=consumer)
    tx = router.propagate(child, usdc, sender=consumer)
    # cum 3333 -> floor(3.333)=3; 6666 -> 6 (3 more); 9999 -> 9 (3 more); owner gets 1
    # (a, b and c have no parents: their parts go straight to their claimables)
    assert [router.claimable(p, usdc) for p in (a, b, c)] == [3, 3, 3]
    assert [router.vault(p, usdc) for p in (a, b, c)] == [0, 0, 0]
    assert router.vault(child, usdc) == 0 and router.claimable(child, usdc) == 1
    ev = [e for e in tx.events if e.event_name == "RoyaltyPropagated"][0]
    assert (ev.capsule_id, ev.amount, ev.to_parents, ev.to_owner) == (child, 10, 9, 1)
    # and the Python split is the contract's
    assert split(10, [3333, 3333, 3333]) == ([3, 3, 3], 1)


def test_propagate__uneven_shares__match_python_split(router, usdc, creator, consumer, mint_capsule, fund):
    shares = [1, 2499, 7, 3000, 1234, 59, 1000, 2198]
    parents = [mint_capsule(creator) for _ in shares]
    child = mint_capsule(creator, parents=list(zip(parents, shares)))
    amount = 987_654_321
    fund(consumer, amount)
    router.pay(child, usdc, amount, sender=consumer)
    router.propagate(child, usdc, sender=consumer)
    parts, owner = split(amount, shares)
    assert [router.claimable(p, usdc) for p in parents] == parts  # root parents: no hop of their own
    assert router.claimable(child, usdc) == owner
    assert sum(parts) + owner == amount


def test_propagate__one_hop_only__parent_vault_waits(router, usdc, creator, consumer, family, fund):
    root, mid, leaf = family
    fund(consumer, 10_000)
    router.pay(leaf, usdc, 10_000, sender=consumer)
    router.propagate(leaf, usdc, sender=consumer)
    assert router.vault(mid, usdc) == 1_000 and router.claimable(mid, usdc) == 0
    # root has no parents: its part skips its vault (its hop could only pay its owner)
    assert router.vault(root, usdc) == 0 and router.claimable(root, usdc) == 500
    assert router.claimable(leaf, usdc) == 8_500


def test_propagate__empty_vault__is_a_silent_noop(router, usdc, creator, stranger, mint_capsule):
    c = mint_capsule(creator, parents=[(mint_capsule(creator), 5000)])
    tx = router.propagate(c, usdc, sender=stranger)
    assert not [e for e in tx.events if e.event_name == "RoyaltyPropagated"]
    # even for a capsule that does not exist (nothing can be in its vault)
    router.propagate(10**9, usdc, sender=stranger)


def test_propagate_many__children_first__settles_whole_graph(router, usdc, creator, consumer, stranger, family, fund):
    root, mid, leaf = family
    fund(consumer, 10_000)
    router.pay(leaf, usdc, 10_000, sender=consumer)
    tx = router.propagate_many([leaf, mid, root, leaf], usdc, sender=stranger)
    # leaf: 1000 to mid, 500 to root, 8500 own; mid: 300 to root, 700 own; root (no parents)
    # received its 800 straight in its claimable, so its vault is empty
    assert [router.claimable(c, usdc) for c in (leaf, mid, root)] == [8_500, 700, 800]
    assert all(router.vault(c, usdc) == 0 for c in (root, mid, leaf))
    assert len([e for e in tx.events if e.event_name == "RoyaltyPropagated"]) == 2  # root, last leaf skipped


def test_propagate__paused_and_token_delisted__still_works(router, usdc, admin, creator, consumer, family, fund):
    root, mid, leaf = family
    fund(consumer, 100)
    router.pay(leaf, usdc, 100, sender=consumer)
    router.pause(sender=admin)
    router.set_token_allowed(usdc, False, sender=admin)
    router.propagate_many([leaf, mid], usdc, sender=consumer)
    router.propagate(root, usdc, sender=consumer)
    assert router.claimable(root, usdc) == 5 + 3  # 5% of 100 + 30% of 10
    assert router.claim(leaf, usdc, creator, sender=creator).return_value == 85


# ----------------------------------------------------------------------------------- claim


def test_claim__owner__propagates_first_and_pays(router, usdc, creator, consumer, family, fund):
    root, mid, leaf = family
    fund(consumer, 10_000)
    router.pay(leaf, usdc, 10_000, sender=consumer)
    before = usdc.balanceOf(creator)
    tx = router.claim(leaf, usdc, creator, sender=creator)
    assert tx.return_value == 8_500
    assert usdc.balanceOf(creator) - before == 8_500
    assert router.claimable(leaf, usdc) == 0 and router.vault(leaf, usdc) == 0
    assert router.vault(mid, usdc) == 1_000 and router.claimable(root, usdc) == 500
    names = [e.event_name for e in tx.events if e.contract_address == router.address]
    assert names == ["RoyaltyPropagated", "RoyaltyClaimed"]
    ev = [e for e in tx.events if e.event_name == "RoyaltyClaimed"][0]
    assert (ev.capsule_id, ev.owner, ev.to, ev.amount) == (leaf, creator.address, creator.address, 8_500)


def test_claim__not_owner__reverts(router, usdc, creator, stranger, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, 10)
    router.pay(c, usdc, 10, sender=consumer)
    with ape.reverts("royalty: not owner"):
        router.claim(c, usdc, stranger, sender=stranger)
    router.propagate(c, usdc, sender=stranger)
    with ape.reverts("royalty: not owner"):
        router.claim(c, usdc, stranger, sender=stranger)
    assert router.claimable(c, usdc) == 10


def test_claim__after_transfer__pays_new_owner(router, registry, usdc, creator, licensor, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, 10)
    router.pay(c, usdc, 10, sender=consumer)
    router.propagate(c, usdc, sender=consumer)
    registry.transferFrom(creator, licensor, c, sender=creator)
    with ape.reverts("royalty: not owner"):
        router.claim(c, usdc, creator, sender=creator)
    assert router.claim(c, usdc, licensor, sender=licensor).return_value == 10
    assert usdc.balanceOf(licensor) == 10


def test_claim__to_other_address__pays_recipient(router, usdc, creator, stranger, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, 7)
    router.pay(c, usdc, 7, sender=consumer)
    router.claim(c, usdc, stranger, sender=creator)
    assert usdc.balanceOf(stranger) == 7


def test_claim__zero_recipient__reverts(router, usdc, creator, mint_capsule):
    c = mint_capsule(creator)
    with ape.reverts("royalty: zero recipient"):
        router.claim(c, usdc, ZERO, sender=creator)


def test_claim__nothing__returns_zero_without_event(router, usdc, creator, mint_capsule):
    c = mint_capsule(creator)
    tx = router.claim(c, usdc, creator, sender=creator)
    assert tx.return_value == 0
    assert not [e for e in tx.events if e.contract_address == router.address]


def test_claim__unknown_capsule__reverts_in_registry(router, usdc, creator):
    with ape.reverts("erc721: invalid token ID"):
        router.claim(10**9, usdc, creator, sender=creator)


def test_claim__paused__still_pays(router, usdc, admin, creator, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, 10)
    router.pay(c, usdc, 10, sender=consumer)
    router.pause(sender=admin)
    assert router.claim(c, usdc, creator, sender=creator).return_value == 10


def test_claim__twice__second_pays_nothing(router, usdc, creator, consumer, mint_capsule, fund):
    c = mint_capsule(creator)
    fund(consumer, 10)
    router.pay(c, usdc, 10, sender=consumer)
    router.claim(c, usdc, creator, sender=creator)
    assert router.claim(c, usdc, creator, sender=creator).return_value == 0
    assert usdc.balanceOf(router) == 0


# ----------------------------------------------------------------------------------- adversarial


@pytest.fixture
def evil(project, admin, router):
    t = admin.deploy(project.EvilReentrantToken)
    router.set_token_allowed(t, True, sender=admin)
    return t


def test_evil_token__claim_reenters_claim__reentry_fails_balances_exact(router, evil, creator, consumer, mint_capsule):
    c = mint_capsule(creator)
    evil.mint(consumer, 100, sender=consumer)
    evil.approve(router, 100, sender=consumer)
    router.pay(c, evil, 100, sender=consumer)
    router.propagate(c, evil, sender=consumer)
    # during the payout transfer, the token re-enters claim for the same capsule
    evil.arm(router, _call(router, "claim", c, evil.address, creator.address), sender=creator)
    assert router.claim(c, evil, creator, sender=creator).return_value == 100
    assert evil.attempts() == 1 and evil.successes() == 0
    assert evil.balanceOf(creator) == 100 and evil.balanceOf(router) == 0
    assert router.claimable(c, evil) == 0


@pytest.mark.parametrize("reentry", ["pay", "vault"])
def test_evil_token__pay_reenters__reentry_fails_balances_exact(router, evil, creator, consumer, mint_capsule, reentry):
    c = mint_capsule(creator, parents=[(mint_capsule(creator), 5000)])
    evil.mint(consumer, 300, sender=consumer)
    evil.approve(router, 300, sender=consumer)
    router.pay(c, evil, 100, sender=consumer)  # disarmed: vault 100
    args = {"pay": (c, evil.address, 100), "vault": (c, evil.address)}[reentry]
    if reentry == "vault":
        abi = router.contract_type.view_methods["vault"]
        data = keccak(text="vault(uint256,address)")[:4] + encode([i.canonical_type for i in abi.inputs], list(args))
    else:
        data = _call(router, reentry, *args)
    evil.arm(router, data, sender=consumer)
    router.pay(c, evil, 100, sender=consumer)
    assert evil.attempts() == 1 and evil.successes() == 0
    assert router.vault(c, evil) == 200 and evil.balanceOf(router) == 200


@pytest.mark.parametrize("reentry", ["propagate", "propagate_many"])
def test_evil_token__pay_reenters_propagate__exempt_and_counted_exactly(
    router, evil, creator, consumer, mint_capsule, reentry
):
    """`propagate` moves no token and is outside the lock (as `credit`): a hop landing inside
    `pay`'s transferFrom is counted exactly, because `pay` re-reads the vault after its calls."""
    parent = mint_capsule(creator)
    c = mint_capsule(creator, parents=[(parent, 5000)])
    evil.mint(consumer, 300, sender=consumer)
    evil.approve(router, 300, sender=consumer)
    router.pay(c, evil, 100, sender=consumer)  # disarmed: vault 100
    args = {"propagate": (c, evil.address), "propagate_many": ([c], evil.address)}[reentry]
    evil.arm(router, _call(router, reentry, *args), sender=consumer)
    router.pay(c, evil, 100, sender=consumer)
    assert evil.attempts() == 1 and evil.successes() == 1
    # the first 100 was propagated inside the pull, the second 100 landed after it
    assert router.vault(c, evil) == 100 and router.claimable(c, evil) == 50
    assert router.claimable(parent, evil) == 50 and evil.balanceOf(router) == 200


def test_evil_token__claim_reenters_propagate__counted_exactly(router, evil, creator, consumer, mint_capsule):
    parent = mint_capsule(creator)
    c = mint_capsule(creator, parents=[(parent, 5000)])
    evil.mint(consumer, 200, sender=consumer)
    evil.approve(router, 200, sender=consumer)
    router.pay(c, evil, 100, sender=consumer)
    router.pay(parent, evil, 100, sender=consumer)
    evil.arm(router, _call(router, "propagate", parent, evil.address), sender=consumer)
    assert router.claim(c, evil, creator, sender=creator).return_value == 50
    # the payout transfer re-entered propagate(parent): the claim had already written its slot
    assert evil.attempts() == 1 and evil.successes() == 1
    assert router.vault(parent, evil) == 0 and router.claimable(parent, evil) == 150
    assert evil.balanceOf(router) == 150


def test_blacklist_token__claim_to_blocked__reverts_then_other_address_works(
    project, router, admin, creator, consumer, stranger, mint_capsule
):
    t = admin.deploy(project.MockBlacklistToken)
    router.set_token_allowed(t, True, sender=admin)
    c = mint_capsule(creator)
    t.mint(consumer, 50, sender=consumer)
    t.approve(router, 50, sender=consumer)
    router.pay(c, t, 50, sender=consumer)
    t.blacklist(creator, True, sender=admin)
    with ape.reverts("blacklist: receiver blocked"):
        router.claim(c, t, creator, sender=creator)
    assert router.vault(c, t) == 50  # the whole claim (incl. its propagation) rolled back
    assert router.claim(c, t, stranger, sender=creator).return_value == 50
    assert t.balanceOf(stranger) == 50 and t.balanceOf(router) == 0


def test_deep_graph__100_levels__settles_hop_by_hop_with_flat_gas(
    router, registry, usdc, creator, consumer, mint_capsule, fund
):
    chain_ids = [mint_capsule(creator)]
    for _ in range(99):
        chain_ids.append(mint_capsule(creator, parents=[(chain_ids[-1], 5000)]))
    leaf = chain_ids[-1]
    amount = 2**100
    fund(consumer, amount)
    router.pay(leaf, usdc, amount, sender=consumer)
    gas = []
    for c in reversed(chain_ids):
        gas.append(router.propagate(c, usdc, sender=consumer).gas_used)
    # each hop: the same work (one parent, a cold zero parent slot), whatever the depth; the
    # last two differ by design: the hop into the root (its first-hop root check reads a
    # capsule without parents) and the root's own, with an empty vault (its parts went
    # straight to its claimable)
    assert max(gas[:-2]) - min(gas[:-2]) <= 300, gas
    graph = load_graph_from_chain(registry, [leaf])
    expected = breakdown(graph, leaf, amount).by_capsule
    assert {c: router.claimable(c, usdc) for c in chain_ids} == {c: expected.get(c, 0) for c in chain_ids}
    assert sum(router.claimable(c, usdc) for c in chain_ids) == amount


# ----------------------------------------------------------------------------------- indexer


def test_events__rebuild_vaults_and_claimables_without_calls(
    router, registry, usdc, creator, consumer, licensor, family, fund, mint_capsule
):
    """RoyaltyCredited/Propagated/Claimed + lineage from CapsuleMinted rebuild every balance."""
    root, mid, leaf = family
    other = mint_capsule(creator, parents=[(leaf, 777), (root, 1234)])
    fund(consumer, 10**9)
    txs = [
        router.pay(other, usdc, 123_457, sender=consumer),
        router.pay(leaf, usdc, 99_999, sender=consumer),
        router.propagate(other, usdc, sender=licensor),
        router.propagate(leaf, usdc, sender=licensor),
        router.claim(leaf, usdc, creator, sender=creator),
        router.pay(mid, usdc, 31, sender=consumer),
        router.propagate_many([mid, root], usdc, sender=licensor),
    ]
    lineage: dict[int, list[tuple[int, int]]] = {}
    for log in registry.CapsuleMinted.range(0, ape.chain.blocks.height + 1):
        lineage[log.capsule_id] = [(p[0], p[1]) for p in log.parents]
    vault: dict[int, int] = {}
    claimable: dict[int, int] = {}
    for tx in txs:
        for e in tx.events:
            if e.contract_address != router.address:
                continue
            if e.event_name == "RoyaltyCredited":
                vault[e.capsule_id] = vault.get(e.capsule_id, 0) + e.amount
            elif e.event_name == "RoyaltyPropagated":
                vault[e.capsule_id] -= e.amount
                parents = lineage[e.capsule_id]
                parts, owner = split(e.amount, [s for _, s in parents])
                assert owner == e.to_owner and sum(parts) == e.to_parents
                for (p, _), part in zip(parents, parts):
                    # a parent with no parents of its own is paid straight into its claimable
                    book = claimable if not lineage[p] else vault
                    book[p] = book.get(p, 0) + part
                claimable[e.capsule_id] = claimable.get(e.capsule_id, 0) + e.to_owner
            elif e.event_name == "RoyaltyClaimed":
                claimable[e.capsule_id] -= e.amount
    for c in (root, mid, leaf, other):
        assert router.vault(c, usdc) == vault.get(c, 0)
        assert router.claimable(c, usdc) == claimable.get(c, 0)


# ----------------------------------------------------------------------------------- CLI


def test_cli__breakdown_and_settle__against_chain(
    tmp_path, monkeypatch, router, registry, usdc, creator, consumer, family, fund
):
    from click.testing import CliRunner

    from codexfield import deployments
    from codexfield.cli.royalty import royalty_group

    root, mid, leaf = family
    book = deployments.AddressBook(
        chain_id=ape.chain.chain_id,
        contracts={"CapsuleRegistry": registry.address, "RoyaltyRouter": router.address},
        tokens={"USDC": {"address": usdc.address, "decimals": 6}},
    )
    deployments.save(book, "ethereum", "local", tmp_path)
    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path)
    runner = CliRunner()
    out = runner.invoke(royalty_group, ["breakdown", str(leaf), "1", "--token", "USDC", "--paths"])
    assert out.exit_code == 0, out.output
    assert "0.85" in out.output and "0.07" in out.output and "0.08" in out.output
    fund(consumer, 10**6)
    router.pay(leaf, usdc, 10**6, sender=consumer)
    out = runner.invoke(
        royalty_group, ["settle", str(leaf), "--token", "USDC", "--account", "TEST::7", "--batch-size", "2"]
    )
    assert out.exit_code == 0, out.output
    # leaf and mid; root, reached only as mid's parent, is paid straight into its claimable
    assert "2 capsules in 1 batch(es)" in out.output
    assert [router.claimable(c, usdc) for c in (leaf, mid, root)] == [850_000, 70_000, 80_000]


@pytest.mark.parametrize("during", ["claim", "pay"])
def test_credit__reentering_from_a_creditor_inside_claim_or_pay__is_counted_exactly(
    project, admin, registry, creator, consumer, accounts, mint_capsule, during
):
    """`credit` is outside the reentrancy lock: a wired creditor's credit that lands inside
    `claim`'s payout or `pay`'s pull (here the token itself is wired as the creditor) is added
    once, after the slot was written (claim) or before it is re-read (pay): conservation holds."""
    r = admin.deploy(project.RoyaltyRouter, registry, admin)
    evil = admin.deploy(project.EvilReentrantToken)
    r.set_token_allowed(evil, True, sender=admin)
    r.wire(evil, accounts[9], sender=admin)
    c = mint_capsule(creator)
    evil.mint(consumer, 300, sender=consumer)
    evil.approve(r, 300, sender=consumer)
    r.pay(c, evil, 100, sender=consumer)
    r.propagate(c, evil, sender=consumer)
    evil.mint(r, 7, sender=consumer)  # the creditor's 7 wei are in the router before it credits them
    evil.arm(r, _call(r, "credit", c, evil.address, 7), sender=consumer)
    if during == "claim":
        assert r.claim(c, evil, creator, sender=creator).return_value == 100
        assert (r.vault(c, evil), r.claimable(c, evil)) == (7, 0)
    else:
        r.pay(c, evil, 50, sender=consumer)  # credit moves no token: the pull's balance delta stays exact
        assert (r.vault(c, evil), r.claimable(c, evil)) == (57, 100)
    assert evil.attempts() == 1 and evil.successes() == 1
    assert evil.balanceOf(r) == r.vault(c, evil) + r.claimable(c, evil)
