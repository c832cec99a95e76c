"""Property tests: lineage is acyclic by construction, shares bounded, content hashes immutable."""

from __future__ import annotations

import ape
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


def test_lineage_state_machine(registry, accounts, chain):
    owners = [accounts[1], accounts[2], accounts[3]]

    class Lineage(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snapshot = chain.snapshot()
            self.model: dict[int, dict] = {}  # id -> {hash, parents, owner}
            self.first_id = registry.next_id()

        def teardown(self):
            # full check of every capsule once per example (the per-step invariant checks the newest)
            for cid in self.model:
                self._check(cid)
            chain.restore(self.snapshot)

        def _check(self, cid):
            m = self.model[cid]
            ps = [tuple(p) for p in registry.parents(cid)]
            assert ps == [tuple(p) for p in m["parents"]]
            assert sum(s for _, s in ps) <= 10_000
            # every edge points to an older capsule: a topological order exists, so no cycle
            assert all(self.first_id <= p < cid for p, _ in ps)
            assert registry.capsule(cid).content_hash == m["hash"]
            assert registry.ownerOf(cid) == m["owner"]
            assert registry.capsule(cid).creator == m["creator"]  # kept through transfers

        @rule(
            who=st.integers(0, 2),
            data=st.data(),
            h=st.binary(min_size=32, max_size=32).filter(lambda b: any(b)),
        )
        def mint(self, who, data, h):
            sender = owners[who]
            ids = list(self.model)
            picked = data.draw(st.lists(st.sampled_from(ids), max_size=8, unique=True)) if ids else []
            # sometimes point at a capsule that does not exist yet (the only way to form a cycle)
            bogus = data.draw(st.booleans()) and len(picked) < 8
            if bogus:
                picked = picked + [registry.next_id() + data.draw(st.integers(0, 3))]
            shares = [data.draw(st.integers(0, 10_000)) for _ in picked]
            parents = list(zip(picked, shares))
            known = [p for p in picked if p in self.model]
            owns_all = all(self.model[p]["owner"] == sender.address for p in known)
            reused = any(m["hash"] == h for m in self.model.values())
            should_fail = bogus or sum(shares) > 10_000 or not owns_all or reused
            if should_fail:
                with ape.reverts():
                    registry.mint(1, h, parents, [], "", sender=sender)
                return
            cid = registry.mint(1, h, parents, [], "", sender=sender).return_value
            self.model[cid] = {"hash": h, "parents": parents, "owner": sender.address, "creator": sender.address}

        @precondition(lambda self: self.model)
        @rule(data=st.data(), to=st.integers(0, 2))
        def transfer(self, data, to):
            cid = data.draw(st.sampled_from(list(self.model)))
            owner = self.model[cid]["owner"]
            registry.transferFrom(owner, owners[to], cid, sender=owner)
            self.model[cid]["owner"] = owners[to].address

        @invariant()
        def newest_capsule_matches_model(self):
            if self.model:
                self._check(max(self.model))

    run_state_machine_as_test(Lineage, settings=settings(settings.default, max_examples=10, stateful_step_count=12))
