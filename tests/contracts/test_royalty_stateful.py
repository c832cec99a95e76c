"""RoyaltyRouter stateful property test (DESIGN §5).

Random lineage DAGs (parents exist before their children, so acyclic by construction; up to
8 parents, random shares, up to 50 capsules), random payments, propagations in random order,
ownership transfers and claims by random accounts. A Python model of every vault and
claimable follows along. Invariants:
- conservation: router token balance == Σ vaults + Σ claimables, to the wei;
- every propagation splits exactly (parents + owner == amount) as `codexfield.royalty.split`;
- only the current owner claims, and receives exactly the model's amount;
- the wired creditors credit whatever the pause and the allow-list say (they stop `pay` only),
  and the admin, whatever roles it grants itself, never credits or moves a balance;
- after full settlement in planner order the claimables equal the Python `settle` /
  `breakdown` exactly.
"""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from codexfield.royalty import BPS, breakdown, claimables, load_graph_from_chain, plan, settle, split

MAX_CAPSULES = 50


@pytest.fixture(scope="module")
def router(deploy_router):
    return deploy_router()  # EOAs (accounts[8], accounts[9]) stand in for the LicenseManager and the meter


@st.composite
def shares_for(draw, k):
    left = BPS
    out = []
    for _ in range(k):
        s = draw(st.integers(0, min(left, 5000)))
        out.append(s)
        left -= s
    return out


def test_royalty_router__stateful(
    chain, router, registry, usdc, admin, creator, licensor, consumer, stranger, node, mint_capsule, accounts
):
    owners = [creator, licensor, consumer, stranger]
    creditors = [accounts[8], accounts[9]]
    creditor_role = keccak(text="CREDITOR")
    payer = node
    usdc.mint(payer, 2**120, sender=payer)
    usdc.approve(router, 2**120, sender=payer)

    class RoyaltyMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.snap = chain.snapshot()
            self.graph: dict[int, tuple[str, list[tuple[int, int]]]] = {}
            self.owner: dict[int, object] = {}
            self.vault: dict[int, int] = {}
            self.claimable: dict[int, int] = {}
            self.base = usdc.balanceOf(router)  # nothing else holds balances here
            self.paused = False
            self.allowed = True

        def teardown(self):
            try:
                self._check_all()
            finally:
                chain.restore(self.snap)

        # ---------------------------------------------------------------- helpers
        def _owned_by(self, acct):
            return [c for c, o in self.owner.items() if o == acct]

        def _mint(self, minter, parents):
            c = mint_capsule(minter, parents=parents)
            self.graph[c] = (minter.address, list(parents))
            self.owner[c] = minter
            return c

        def _apply_hop(self, c, amount, to_parents, to_owner):
            parents = self.graph[c][1]
            parts, own = split(amount, [s for _, s in parents])
            assert (sum(parts), own) == (to_parents, to_owner)
            self.vault[c] -= amount
            for (p, _), part in zip(parents, parts):
                # a parent without parents is paid straight into its claimable (no hop of its own)
                book = self.claimable if not self.graph[p][1] else self.vault
                book[p] = book.get(p, 0) + part
            self.claimable[c] = self.claimable.get(c, 0) + own

        def _apply_events(self, tx):
            for e in tx.events:
                if e.contract_address == router.address and e.event_name == "RoyaltyPropagated":
                    self._apply_hop(e.capsule_id, e.amount, e.to_parents, e.to_owner)

        def _check_all(self):
            ids = list(self.graph)
            chain_v = {c: router.vault(c, usdc) for c in ids}
            chain_c = {c: router.claimable(c, usdc) for c in ids}
            assert chain_v == {c: self.vault.get(c, 0) for c in ids}
            assert chain_c == {c: self.claimable.get(c, 0) for c in ids}
            assert usdc.balanceOf(router) - self.base == sum(chain_v.values()) + sum(chain_c.values())

        # ---------------------------------------------------------------- rules
        @initialize(n=st.integers(1, 3), who=st.sampled_from(range(4)))
        def roots(self, n, who):
            for _ in range(n):
                self._mint(owners[who], [])

        @precondition(lambda self: len(self.graph) < MAX_CAPSULES)
        @rule(who=st.sampled_from(range(4)), data=st.data())
        def mint(self, who, data):
            minter = owners[who]
            mine = self._owned_by(minter)
            k = data.draw(st.integers(0, min(8, len(mine))), label="k")
            parents = data.draw(st.permutations(mine), label="parents")[:k] if k else []
            shares = data.draw(shares_for(k), label="shares")
            self._mint(minter, list(zip(parents, shares)))

        @rule(data=st.data(), amount=st.one_of(st.integers(1, 100), st.integers(1, 10**24)))
        def pay(self, data, amount):
            c = data.draw(st.sampled_from(sorted(self.graph)), label="capsule")
            if self.paused or not self.allowed:
                with ape.reverts("royalty: paused" if self.paused else "royalty: token not allowed"):
                    router.pay(c, usdc, amount, sender=payer)
                return
            router.pay(c, usdc, amount, sender=payer)
            self.vault[c] = self.vault.get(c, 0) + amount

        @rule(data=st.data(), who=st.sampled_from(range(2)), amount=st.integers(0, 10**24))
        def credit(self, data, who, amount):
            """A wired creditor sends, then credits: never stopped by pause or allow-list."""
            c = data.draw(st.sampled_from(sorted(self.graph)), label="capsule")
            usdc.mint(router, amount, sender=creditors[who])
            router.credit(c, usdc, amount, sender=creditors[who])
            self.vault[c] = self.vault.get(c, 0) + amount

        @rule(pause=st.booleans(), allow=st.booleans())
        def governance_switches(self, pause, allow):
            if pause != self.paused:
                (router.pause if pause else router.unpause)(sender=admin)
                self.paused = pause
            if allow != self.allowed:
                router.set_token_allowed(usdc, allow, sender=admin)
                self.allowed = allow

        @rule(data=st.data(), amount=st.integers(1, 10**24))
        def admin_tries_to_credit(self, data, amount):
            """The admin grants itself the old CREDITOR role and credits unsent tokens: refused."""
            c = data.draw(st.sampled_from(sorted(self.graph)), label="capsule")
            router.grantRole(creditor_role, admin, sender=admin)
            with ape.reverts("royalty: not creditor"):
                router.credit(c, usdc, amount, sender=admin)
            with ape.reverts("royalty: already wired"):
                router.wire(admin, admin, sender=admin)

        @rule(data=st.data())
        def propagate(self, data):
            c = data.draw(st.sampled_from(sorted(self.graph)), label="capsule")
            tx = router.propagate(c, usdc, sender=stranger)
            hops = [e for e in tx.events if e.event_name == "RoyaltyPropagated"]
            assert len(hops) == (1 if self.vault.get(c, 0) else 0)
            self._apply_events(tx)
            for p in [c] + [p for p, _ in self.graph[c][1]]:
                assert router.vault(p, usdc) == self.vault.get(p, 0)
                assert router.claimable(p, usdc) == self.claimable.get(p, 0)

        @rule(data=st.data())
        def propagate_many_random_order(self, data):
            ids = data.draw(st.lists(st.sampled_from(sorted(self.graph)), max_size=6), label="ids")
            self._apply_events(router.propagate_many(ids, usdc, sender=stranger))

        @rule(data=st.data(), to=st.sampled_from(range(4)))
        def transfer(self, data, to):
            c = data.draw(st.sampled_from(sorted(self.graph)), label="capsule")
            frm = self.owner[c]
            registry.transferFrom(frm, owners[to], c, sender=frm)
            self.owner[c] = owners[to]

        @rule(data=st.data(), who=st.sampled_from(range(4)))
        def claim(self, data, who):
            c = data.draw(st.sampled_from(sorted(self.graph)), label="capsule")
            caller = owners[who]
            if caller != self.owner[c]:
                with ape.reverts("royalty: not owner"):
                    router.claim(c, usdc, caller, sender=caller)
                return
            before = usdc.balanceOf(caller)
            tx = router.claim(c, usdc, caller, sender=caller)
            self._apply_events(tx)
            expected = self.claimable.get(c, 0)
            assert tx.return_value == expected
            assert usdc.balanceOf(caller) - before == expected
            self.claimable[c] = 0

        @rule()
        def settle_in_planner_order(self):
            sources = [c for c, v in self.vault.items() if v]
            if not sources:
                return
            graph = load_graph_from_chain(registry, sources)
            for c in graph:  # the chain's lineage is the model's
                assert [tuple(e) for e in graph[c][1]] == self.graph[c][1]
            hops = settle(graph, {c: self.vault[c] for c in sources})
            expected = dict(self.claimable)
            added = claimables(graph, hops)
            for c, v in added.items():
                expected[c] = expected.get(c, 0) + v
            for batch in plan(graph, sources, batch_size=4):
                self._apply_events(router.propagate_many(batch, usdc, sender=stranger))
            assert not any(self.vault.values())
            touched = set(added)
            assert {c: router.claimable(c, usdc) for c in touched} == {c: expected.get(c, 0) for c in touched}

        @precondition(lambda self: not any(self.vault.values()))
        @rule(data=st.data(), amount=st.integers(1, 10**24))
        def pay_and_settle_matches_breakdown(self, data, amount):
            c = data.draw(st.sampled_from(sorted(self.graph)), label="capsule")
            b = breakdown(self.graph, c, amount)
            before = {k: router.claimable(k, usdc) for k in b.by_capsule}
            usdc.mint(router, amount, sender=creditors[1])  # credited: works whatever the switches
            router.credit(c, usdc, amount, sender=creditors[1])
            self.vault[c] = amount
            for batch in plan(self.graph, [c], batch_size=8):
                self._apply_events(router.propagate_many(batch, usdc, sender=stranger))
            got = {k: router.claimable(k, usdc) - before[k] for k in b.by_capsule}
            assert got == b.by_capsule
            assert not any(self.vault.values())

        @invariant()
        def conservation(self):
            # cheap every step (one call); the full per-capsule comparison runs at teardown
            total = sum(self.vault.values()) + sum(self.claimable.values())
            assert usdc.balanceOf(router) - self.base == total

    # Bounded below the ci profile (25 x 20) to keep this file under ~40 s on a shared machine;
    # HYPOTHESIS_PROFILE=deep runs the profile's own numbers.
    deep = settings.default.max_examples > 25
    run_state_machine_as_test(
        RoyaltyMachine,
        settings=settings(
            max_examples=settings.default.max_examples if deep else 12,
            stateful_step_count=settings.default.stateful_step_count if deep else 16,
        ),
    )
