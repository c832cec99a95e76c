"""AccessStaking stateful: nodes join, report, fail, unbond, get slashed and claim, while pauses
come and go and the admin changes the reporter committee. Invariants: conservation of both
tokens to the wei (slashed stake is burnt: it stays, counted in `burnt_stake`), per-node stake
accounting (deposits - withdrawals - slashes == stake + thawing, so no stake escapes a slash),
rewards only to nodes that are not jailed, withdrawals and claims work while paused; the
committee of every epoch equals the model's (changes take effect the epoch after they are made),
only members of an epoch's committee can report for it, and a node's epoch is scored only with
reports from a strict majority of that epoch's committee."""

from __future__ import annotations

import ape
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from codexfield import poa

from poa_helpers import BAD, EPOCH, GOOD, PARAMS, REGION, WAD, WINDOW, ZERO, System

# Honest and lying observations of one node.
SAMPLES = {"good": GOOD, "bad": BAD, "meh": (20, 13, 900)}


@pytest.fixture(scope="module")
def world(project, chain, admin, accounts, reporter):
    reporters = [reporter, accounts[8], accounts[9], accounts[10], accounts[11]]  # the first 3 sit from epoch 0
    s = System(project, chain, admin, reporters[:3], same_token=False)
    nodes = [accounts[i] for i in (1, 2, 3, 4)]
    for n in nodes:
        s.fund_stake(n, 10**24)
    return s, nodes, reporters, accounts[7]


def test_access_staking__stateful(world, chain):
    s, nodes, reporters, keeper = world
    staking = s.staking

    class Machine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.snap = chain.snapshot()
            self.deposited = {str(n): 0 for n in nodes}
            self.withdrawn = {str(n): 0 for n in nodes}
            self.slashed = {str(n): 0 for n in nodes}
            self.jailed_until: dict[str, int] = {}
            self.ejected: set[str] = set()
            self.paid = 0
            self.funded = 0
            # committee model: member -> (from_epoch, until_epoch or None)
            self.seats = {str(r): (0, None) for r in reporters[:3]}
            self.reported: dict[tuple[int, str], int] = {}  # (epoch, node) -> reports
            self.done: set[tuple[int, str, str]] = set()  # (epoch, node, reporter)

        def teardown(self):
            chain.restore(self.snap)

        # -- helpers ------------------------------------------------------------------------------
        def epoch_now(self) -> int:
            return (chain.pending_timestamp - s.genesis) // EPOCH

        def status(self, n) -> int:
            return int(staking.node(n).status)

        def record(self, tx) -> None:
            for ev in tx.events.filter(staking.NodeJailed):
                self.slashed[str(ev.node)] += int(ev.slashed)
                self.jailed_until[str(ev.node)] = int(ev.until)
            for ev in tx.events.filter(staking.NodeEjected):
                self.ejected.add(str(ev.node))
            for ev in tx.events.filter(staking.EpochScored):
                n_reports = self.reported.get((int(ev.epoch), str(ev.node)), 0)
                assert 2 * n_reports > self.size_at(int(ev.epoch)) and n_reports >= PARAMS.quorum
                if int(ev.weight) > 0:
                    # rewards only to nodes that are neither jailed in that epoch nor ejected
                    assert str(ev.node) not in self.ejected
                    assert int(ev.epoch) >= self.jailed_until.get(str(ev.node), 0)

        def sits(self, r, e) -> bool:
            seat = self.seats.get(str(r))
            return seat is not None and seat[0] <= e and (seat[1] is None or e < seat[1])

        def size_at(self, e) -> int:
            return sum(1 for r in reporters if self.sits(r, e))

        # -- rules --------------------------------------------------------------------------------
        @rule(k=st.integers(0, 4))
        def change_committee(self, k):
            r, e = reporters[k], self.epoch_now()
            seat = self.seats.get(str(r))
            if seat is not None and seat[1] is None:
                staking.remove_reporter(r, sender=s.admin)
                self.seats[str(r)] = (seat[0], e + 1) if seat[0] <= e else None
            elif seat is None or chain.pending_timestamp >= s.start(seat[1]) + WINDOW or seat[0] >= seat[1]:
                staking.add_reporter(r, sender=s.admin)
                self.seats[str(r)] = (e + 1, None)
            # else: still reporting for its old seat; re-adding would revert

        @rule(i=st.integers(0, 3), stake=st.integers(100, 3_000))
        def register(self, i, stake):
            n = nodes[i]
            if staking.paused() or self.status(n) != poa.Status.NONE:
                return
            staking.register_node("https://n", 1, REGION, ZERO, stake * WAD, sender=n)
            self.deposited[str(n)] += stake * WAD

        @rule(i=st.integers(0, 3), amount=st.integers(1, 10**21))
        def add_stake(self, i, amount):
            n = nodes[i]
            if staking.paused() or self.status(n) not in (poa.Status.ACTIVE, poa.Status.JAILED):
                return
            staking.add_stake(amount, sender=n)
            self.deposited[str(n)] += amount

        @rule(i=st.integers(0, 3), share=st.sampled_from([1, 3, 10]))
        def request_unbond(self, i, share):
            n = nodes[i]
            if self.status(n) not in (poa.Status.ACTIVE, poa.Status.JAILED):
                return
            stake = int(staking.node(n).stake)
            amount = stake if share == 1 else stake // share
            if amount == 0 or (stake - amount != 0 and stake - amount < PARAMS.min_stake):
                return
            staking.request_unbond(amount, sender=n)

        @rule(i=st.integers(0, 3))
        def withdraw(self, i):
            n = nodes[i]
            unbonding = int(staking.node(n).unbonding)
            _, thaw_end, _, _ = staking.node_extra(n)
            if unbonding == 0 or chain.pending_timestamp < thaw_end:
                return
            if int(staking.next_epoch()) < (thaw_end - s.genesis) // EPOCH:
                return
            before = int(s.stk.balanceOf(n))
            staking.withdraw_unbonded(sender=n)  # also while paused
            assert int(s.stk.balanceOf(n)) - before == unbonding
            self.withdrawn[str(n)] += unbonding

        @rule(amount=st.integers(1, 10**22))
        def fund(self, amount):
            s.fund(keeper, amount)
            self.funded += amount

        @rule(
            kinds=st.lists(st.sampled_from(["good", "bad", "meh", "none"]), min_size=4, max_size=4), liar=st.booleans()
        )
        def report(self, kinds, liar):
            if staking.paused():
                return
            e = self.epoch_now()
            if chain.pending_timestamp < s.start(e) + 1:
                chain.pending_timestamp = s.start(e) + 1
            for k, r in enumerate(reporters):
                assert bool(staking.is_reporter(r, e)) == self.sits(r, e)
                if not self.sits(r, e):
                    if staking.node_count() > 0:
                        with ape.reverts("poa: not in committee"):
                            staking.submit_reports(e, [(staking.node_at(0), *GOOD)], sender=r)
                    continue
                batch = []
                for n, kind in zip(nodes, kinds):
                    if kind == "none" or self.status(n) not in (poa.Status.ACTIVE, poa.Status.JAILED):
                        continue
                    if (e, str(n), str(r)) in self.done:
                        continue  # already reported by this reporter this epoch
                    sample = SAMPLES[kind]
                    if liar and k == 2:
                        sample = GOOD if kind == "bad" else BAD
                    batch.append((n, *sample))
                if batch:
                    staking.submit_reports(e, batch, sender=r)
                    for n, *_ in batch:
                        self.done.add((e, str(n), str(r)))
                        self.reported[(e, str(n))] = self.reported.get((e, str(n)), 0) + 1

        @rule(pages=st.sampled_from([1, 2, 50]))
        def advance_and_finalize(self, pages):
            e = self.epoch_now()
            chain.pending_timestamp = max(chain.pending_timestamp, s.start(e + 1) + WINDOW)
            for ep in range(int(staking.next_epoch()), e + 1):
                while int(staking.next_epoch()) == ep:
                    self.record(staking.finalize_epoch(ep, pages, sender=keeper))

        @rule(i=st.integers(0, 3))
        def claim(self, i):
            n = nodes[i]
            due = int(staking.claimable(n))
            before = int(s.rwd.balanceOf(n))
            staking.claim_rewards(n, sender=keeper)  # works paused or not
            assert int(s.rwd.balanceOf(n)) - before == due
            self.paid += due

        @rule()
        def toggle_pause(self):
            if staking.paused():
                staking.unpause(sender=s.admin)
            else:
                staking.pause(sender=s.admin)

        # -- invariants ---------------------------------------------------------------------------
        @invariant()
        def committee_matches_model(self):
            e = self.epoch_now()
            for ep in (max(e - 1, 0), e, e + 1):
                assert int(staking.committee_size(ep)) == self.size_at(ep)

        @invariant()
        def stake_conserved(self):
            total_staked = int(staking.total_staked())
            total_thawing = int(staking.total_thawing())
            burnt = int(staking.burnt_stake())
            assert int(s.stk.balanceOf(staking)) == total_staked + total_thawing + burnt
            sum_stake = sum_thaw = 0
            for n in nodes:
                info = staking.node(n)
                sum_stake += int(info.stake)
                sum_thaw += int(info.unbonding)
                key = str(n)
                assert self.deposited[key] - self.withdrawn[key] - self.slashed[key] == int(info.stake) + int(
                    info.unbonding
                )
            assert (sum_stake, sum_thaw) == (total_staked, total_thawing)
            assert burnt == sum(self.slashed.values())  # slashed stake reaches no address

        @invariant()
        def rewards_conserved(self):
            undistributed = int(staking.rewards_undistributed())
            reserved = int(staking.rewards_reserved())
            credited = int(staking.rewards_credited())
            assert int(s.rwd.balanceOf(staking)) == undistributed + reserved + credited
            assert self.funded == self.paid + undistributed + reserved + credited
            assert sum(int(staking.claimable(n)) for n in nodes) <= reserved + credited

    run_state_machine_as_test(Machine, settings=settings(max_examples=5, stateful_step_count=15, deadline=None))
