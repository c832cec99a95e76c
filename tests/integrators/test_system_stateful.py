"""System-wide stateful test: the whole CodexField system, deployed by codexfield.deploy,
driven by random mixed actions of creators, consumers, nodes, a reporter and the admin.

After every step it checks the DESIGN §5 invariants across all contracts at once:
- conservation per token: every wei of USDC and CDX minted is in a wallet or accounted by an
  internal balance (meter escrow + node balances + fees; router vaults + claimables; staking
  rewards undistributed + reserved + credited; stake + thawing stake);
- no voucher is paid twice and cumulative counters never decrease (stale, replayed and
  malleated vouchers pay nothing);
- a revoked (effective) or expired credential never authorizes and never settles usage;
- lineage is acyclic (parents are older) and a capsule's content_hash never changes;
- stake leaves only through thawing (per node: deposited - withdrawn - slashed == stake + thawing);
- consumers withdraw escrow, owners claim royalties and nodes withdraw earnings, paused or not;
- issue 12: a voucher valid when signed is payable for the settlement window whatever the
  consumer does afterwards (it requests and waits out a withdrawal within the window), and only
  the node's own settlements move its usage counters (another node's vouchers in its batch are
  rejected alone and leave the other node's counters untouched).
"""

from __future__ import annotations

import os

import ape
import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from codexfield import scopes
from codexfield.constants import Reject
from codexfield.poa import Params
from codexfield.sdk import CodexField
from codexfield.sdk.metering import SECP256K1_N

from support.system import deploy
from support.terms import terms_tuple

INFERENCE = scopes.mask_of(["inference"])
SCOPE = scopes.mask_of(["inference", "research", "derivatives"])
EPOCH = 3600
PARAMS = Params(
    min_stake=10**18, report_window=600, thaw_period=3 * EPOCH, quorum=1, strikes_to_jail=1, jail_epochs=1, max_jails=3
)
THAW = 2 * 86400
BIG = 10**30


@pytest.fixture(scope="module")
def system(admin, reporter):
    return deploy(admin, reporters=[reporter], poa=PARAMS, epoch_length=EPOCH, withdrawal_thaw=THAW)


class _Fixed:
    """Stands in for `st.data()` when a rule is called from `initialize`: draws return `value`."""

    def __init__(self, value):
        self.value = value

    def draw(self, _strategy):
        return self.value


def malleate(sig: bytes) -> bytes:
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


def test_system__stateful(system, chain, accounts, admin, creator, licensor, consumer, stranger, node, reporter):
    cf = CodexField(system.book, account=admin)
    usdc, cdx = cf.test_token("USDC"), cf.test_token("CDX")
    reg, lm, router, meter, staking = cf.registry, cf.licenses, cf.router, cf.meter, cf.staking
    creators = [creator, licensor]
    consumers = [consumer, stranger]
    nodes = [node, accounts[10]]
    treasury = admin
    wallets = [admin, creator, licensor, consumer, stranger, node, accounts[10], reporter]

    class System(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.snap = chain.snapshot()
            self.capsules: dict[int, tuple[bytes, list[int]]] = {}
            self.terms: list[int] = []
            self.creds: dict[int, object] = {}  # credential -> holder account
            self.settled: dict[tuple[int, str], tuple] = {}
            self.registered: set[str] = set()
            self.stake_in: dict[str, int] = {}
            self.stake_out: dict[str, int] = {}
            self.reported: set[int] = set()
            self.minted = {"USDC": 0, "CDX": 0}
            self.supply0 = {"USDC": self._held(usdc), "CDX": self._held(cdx)}
            self.treasury_cdx0 = int(cdx.balanceOf(treasury))

        def teardown(self):
            chain.restore(self.snap)

        # ------------------------------------------------------------------ helpers
        def _held(self, tok):
            holders = wallets + [meter, router, staking, lm, reg]
            return sum(int(tok.balanceOf(h)) for h in holders)

        def _mint(self, tok, sym, who, amount):
            tok.mint(who, amount, sender=admin)
            self.minted[sym] += amount

        def _any_paused(self, *contracts):
            return any(c.paused() for c in contracts)

        def _epoch(self):
            return int(staking.current_epoch())

        @initialize()
        def base_system(self):
            """A dataset and a derived model, terms on both (one expiring), a credential per
            consumer on each, funded escrows and two staked nodes: the random steps start here."""
            self.mint_capsule(0, 0, 0)
            self.mint_capsule(0, 1, 2000)
            for cid, duration in ((1, 3600), (2, 0)):
                self.create_terms(_Fixed(cid), 5, 1000, duration, 0)
            for tid in list(self.terms):
                for who in (0, 1):
                    self.purchase(_Fixed(tid), who)
            for who in (0, 1):
                self.deposit(who, 10**9)
                self.register_or_add_stake(who, 2 * 10**18)

        # ------------------------------------------------------------------ capsules and terms
        @rule(who=st.sampled_from([0, 1]), n_parents=st.integers(0, 2), share=st.integers(0, 3000))
        def mint_capsule(self, who, n_parents, share):
            """Mint with up to `n_parents` of the minter's own capsules as parents."""
            owner = creators[who]
            own = [c for c in self.capsules if reg.ownerOf(c) == owner.address][:n_parents]
            parents = [(c, share) for c in own]
            h = os.urandom(32)
            if reg.paused():
                with ape.reverts():
                    reg.mint(2, h, parents, [], "", sender=owner)
                return
            cid = reg.mint(2, h, parents, [], "", sender=owner).return_value
            self.capsules[cid] = (h, [c for c, _ in parents])

        @precondition(lambda self: self.capsules)
        @rule(
            data=st.data(),
            price=st.integers(0, 50),
            upfront=st.integers(0, 10**6),
            duration=st.sampled_from([0, 3600, 86400]),
            notice=st.sampled_from([0, 1800]),
        )
        def create_terms(self, data, price, upfront, duration, notice):
            cid = data.draw(st.sampled_from(sorted(self.capsules)))
            owner = accounts[reg.ownerOf(cid)]
            t = terms_tuple(cid, usdc, scope=SCOPE, price=price, upfront=upfront, duration=duration, notice=notice)
            if lm.paused():
                with ape.reverts("license: paused"):
                    lm.create_terms(t, sender=owner)
                return
            self.terms.append(lm.create_terms(t, sender=owner).return_value)

        @precondition(lambda self: self.terms)
        @rule(data=st.data(), who=st.sampled_from([0, 1]))
        def purchase(self, data, who):
            tid = data.draw(st.sampled_from(self.terms))
            buyer = consumers[who]
            fee = int(lm.terms(tid).upfront_fee)
            self._mint(usdc, "USDC", buyer, fee)
            usdc.approve(lm, fee, sender=buyer)
            if lm.paused():  # pausing stops new activity (a router pause never stops its creditors)
                with ape.reverts():
                    lm.purchase(tid, buyer, fee, sender=buyer)
                return
            if fee > 0:
                with ape.reverts("license: upfront above max"):
                    lm.purchase(tid, buyer, fee - 1, sender=buyer)
            self.creds[lm.purchase(tid, buyer, fee, sender=buyer).return_value] = buyer

        @precondition(lambda self: self.creds)
        @rule(data=st.data())
        def revoke(self, data):
            cred = data.draw(st.sampled_from(sorted(self.creds)))
            lm.revoke(cred, b"\x01" * 32, sender=admin)

        # ------------------------------------------------------------------ metering
        @rule(who=st.sampled_from([0, 1]), amount=st.integers(1, 10**9))
        def deposit(self, who, amount):
            c = consumers[who]
            self._mint(usdc, "USDC", c, amount)
            usdc.approve(meter, amount, sender=c)
            if meter.paused():
                with ape.reverts():
                    meter.deposit(usdc, amount, c, sender=c)
                return
            meter.deposit(usdc, amount, c, sender=c)

        @precondition(lambda self: self.creds)
        @rule(data=st.data(), n=st.integers(1, 4))
        def ingest(self, data, n, single=False):
            vouchers, sigs, expect = [], [], []
            # `n` fresh vouchers, then (in batches) one stale, replayed, malleated and forged
            # voucher each, on random channels; a single-voucher call gets one drawn kind.
            if single:
                kinds = [data.draw(st.sampled_from(["fresh", "stale", "replay", "malleated", "forged", "foreign"]))]
            else:
                kinds = ["fresh"] * n + ["stale", "replay", "malleated", "forged", "foreign"]
            sender = data.draw(st.sampled_from(nodes))  # the node settling its own vouchers
            other = nodes[1] if sender == nodes[0] else nodes[0]
            for kind in kinds:
                cred = data.draw(st.sampled_from(sorted(self.creds)))
                nd = other if kind == "foreign" else sender
                prev = self.settled.get((cred, nd.address), (0, 0, 0, 0))
                mu, calls = prev[0], prev[1]
                if kind in ("fresh", "malleated", "forged"):
                    mu, calls = mu + data.draw(st.integers(1, 1000)), calls + 1
                elif kind == "stale" and mu > 0:
                    mu -= 1
                v = cf.voucher(cred, nd, mu=mu, calls=calls, latency_ms=calls * 10, node_price_per_mu=3)
                sig = cf.sign(v, self.creds[cred] if kind != "forged" else creator)
                if kind == "malleated":
                    sig = malleate(sig)
                vouchers.append(v)
                sigs.append(sig)
                expect.append(kind)
            escrow0 = {c.address: cf.escrow(c, "USDC") for c in consumers}
            epoch = int(meter.current_epoch())
            other_usage = meter.node_usage(other, epoch)
            if not staking.serves(sender, chain.blocks.head.timestamp):  # jailed or ejected: paid nothing
                try:
                    tx = meter.ingest([v.as_tuple() for v in vouchers], sigs, sender=sender)
                except ape.exceptions.ContractLogicError:
                    return
                assert tx.return_value == 0
                return
            channels: dict[tuple[int, str], list[str]] = {}
            for v, kind in zip(vouchers, expect):
                channels.setdefault((v.credential_id, v.node), []).append(kind)
            prev = {k: self.settled.get(k, (0, 0, 0, 0)) for k in channels}
            if single and expect[0] != "fresh":  # a one-voucher call reverts with the reason instead
                with ape.reverts():
                    meter.ingest([vouchers[0].as_tuple()], sigs, sender=sender)
                return
            if router.paused():  # revenue cannot be credited: the batch reverts whole, or pays nothing
                try:
                    tx = meter.ingest([v.as_tuple() for v in vouchers], sigs, sender=sender)
                except ape.exceptions.ContractLogicError:
                    return
            else:
                tx = meter.ingest([v.as_tuple() for v in vouchers], sigs, sender=sender)
            recorded = list(tx.decode_logs(meter.UsageRecorded))
            rejected = list(tx.decode_logs(meter.VoucherRejected))
            assert tx.return_value == len(recorded) and len(recorded) + len(rejected) == len(vouchers)
            paid = {c.address: 0 for c in consumers}
            delta = {k: 0 for k in channels}
            ts = chain.blocks.head.timestamp
            for ev in recorded:
                assert ev.node == sender.address  # only the node's own settlements
                paid[ev.payer] += ev.license_amount + ev.node_amount + ev.protocol_fee
                delta[(ev.credential_id, ev.node)] += ev.delta_mu
                cr = lm.credential(ev.credential_id)
                price = int(lm.terms(cr.terms_id).price_per_mu)
                assert ev.license_amount + ev.node_amount + ev.protocol_fee == ev.delta_mu * (price + 3)
                # usage dated at or after a revocation's effect or the expiry never settles, and
                # nothing settles after the settlement window
                assert cr.revoked_at == 0 or cr.revoked_at > ev.issued_at
                assert cr.expires_at == 0 or cr.expires_at > ev.issued_at
                assert ev.issued_at <= ts <= ev.issued_at + int(meter.settlement_window())
            assert meter.node_usage(other, epoch) == other_usage  # foreign vouchers never count
            for key, kinds in channels.items():
                now = tuple(int(x) for x in meter.settled(key[0], key[1], lm.ownerOf(key[0])))[:4]
                assert all(a >= b for a, b in zip(now, prev[key])), "a cumulative counter decreased"
                assert now[0] - prev[key][0] == delta[key], "settled MU != MU paid for"
                if "fresh" not in kinds:  # stale, replayed, malleated, forged: nothing paid
                    assert now == prev[key] and delta[key] == 0
                self.settled[key] = now
            for c in consumers:
                assert escrow0[c.address] - cf.escrow(c, "USDC") == paid[c.address]

        @precondition(lambda self: self.creds)
        @rule(data=st.data())
        def served_then_consumer_leaves(self, data):
            """Issue 12: a voucher valid when signed stays payable for the settlement window
            whatever the consumer does afterwards: here it requests all its escrow back and waits
            until the window's last minute (the thaw is longer) before the node settles."""
            cred = data.draw(st.sampled_from(sorted(self.creds)))
            holder = self.creds[cred]
            nd = data.draw(st.sampled_from(nodes))
            at = max(chain.blocks.head.timestamp, chain.pending_timestamp - 1)
            prev = self.settled.get((cred, nd.address), (0, 0, 0, 0))
            v = cf.voucher(
                cred, nd, mu=prev[0] + 7, calls=prev[1] + 1, latency_ms=prev[3], node_price_per_mu=3, issued_at=at
            )
            price = int(lm.terms(lm.credential(cred).terms_id).price_per_mu)
            escrow = cf.escrow(holder, "USDC")
            if (
                not staking.serves(nd, at)
                or lm.check_usage(cred, 7, INFERENCE, at, holder).status != Reject.OK
                or escrow < 7 * (price + 3)
                or router.paused()
            ):
                return  # not a voucher valid when signed (or the router's pause, another helper's item)
            sig = cf.sign(v, holder)
            meter.request_withdrawal(usdc, escrow, sender=holder)  # the consumer tries to leave
            chain.pending_timestamp = at + int(meter.settlement_window()) - 60
            tx = meter.ingest([v.as_tuple()], [sig], sender=nd)
            assert tx.return_value == 1
            assert escrow - cf.escrow(holder, "USDC") == 7 * (price + 3)
            self.settled[(cred, nd.address)] = tuple(int(x) for x in meter.settled(cred, nd, holder))[:4]

        @precondition(lambda self: self.creds)
        @rule(data=st.data())
        def ingest_one(self, data):
            """Single-voucher batches (the node's common case); same checks as `ingest`."""
            self.ingest(data, 1, single=True)

        @precondition(lambda self: self.creds)
        @rule(data=st.data())
        def a_metered_epoch(self, data):
            """One epoch of life: a batch with bad vouchers, a (possibly bad) report, royalties
            moved and claimed, time passing and the epoch finalized (slashing a badly reported
            node). Hypothesis's first, simplest example repeats its first rule: this one."""
            self.ingest(data, data.draw(st.integers(1, 4)))
            self.report(data.draw(st.booleans()))
            self.propagate_and_claim(data)
            self.node_payouts(data.draw(st.sampled_from([0, 1])))
            self.time_passes(data.draw(st.sampled_from([EPOCH + PARAMS.report_window, THAW + 1])))

        @rule(who=st.sampled_from([0, 1]), amount=st.integers(1, 10**9))
        def escrow_exit(self, who, amount):
            """Request a withdrawal, or withdraw a thawed one (both work paused or not)."""
            c = consumers[who]
            w = meter.withdrawals(c, usdc)
            if w.amount > 0 and chain.pending_timestamp >= w.ready_at:
                before = int(usdc.balanceOf(c))
                sent = meter.withdraw(usdc, c, sender=c).return_value
                assert int(usdc.balanceOf(c)) - before == sent
                return
            amount = min(amount, cf.escrow(c, "USDC"))
            if amount:
                meter.request_withdrawal(usdc, amount, sender=c)

        @rule(who=st.sampled_from([0, 1]))
        def node_payouts(self, who):
            """A node claims its earnings (paused or not); anyone sweeps fees into the PoA pool."""
            nd = nodes[who]
            if meter.node_balance(nd, usdc) > 0:
                before = int(usdc.balanceOf(nd))
                amount = meter.claim_node(usdc, nd, sender=nd).return_value
                assert int(usdc.balanceOf(nd)) - before == amount
            if meter.fee_balance(usdc) > 0:
                meter.sweep_fees(usdc, sender=reporter)
            if staking.claimable(nd) > 0:
                before = int(usdc.balanceOf(nd))
                amount = staking.claim_rewards(nd, sender=nd).return_value
                assert int(usdc.balanceOf(nd)) - before == amount

        # ------------------------------------------------------------------ royalties
        @precondition(lambda self: self.capsules)
        @rule(data=st.data())
        def propagate_and_claim(self, data):
            cid = data.draw(st.sampled_from(sorted(self.capsules)))
            owner = accounts[reg.ownerOf(cid)]
            vault = int(router.vault(cid, usdc))
            if vault:
                tx = router.propagate(cid, usdc, sender=reporter)
                [ev] = tx.decode_logs(router.RoyaltyPropagated)
                assert ev.to_parents + ev.to_owner == ev.amount == vault
            claimable = int(router.claimable(cid, usdc))
            if data.draw(st.booleans()) and claimable:  # works paused or not
                before = int(usdc.balanceOf(owner))
                router.claim(cid, usdc, owner, sender=owner)
                assert int(usdc.balanceOf(owner)) - before == claimable

        # ------------------------------------------------------------------ proof of access
        @rule(who=st.sampled_from([0, 1]), stake=st.integers(10**18, 5 * 10**18))
        def register_or_add_stake(self, who, stake):
            nd = nodes[who]
            self._mint(cdx, "CDX", nd, stake)
            cdx.approve(staking, stake, sender=nd)
            if staking.paused():
                return
            info = staking.node(nd)
            if info.status == 0:
                staking.register_node("https://n.example", 1, b"eu-west\x00", "0x" + "00" * 20, stake, sender=nd)
            elif info.status in (1, 2):
                staking.add_stake(stake, sender=nd)
            else:
                return
            self.stake_in[nd.address] = self.stake_in.get(nd.address, 0) + stake

        @rule(who=st.sampled_from([0, 1]), bps=st.integers(1, 10_000))
        def unbond(self, who, bps):
            """Withdraw thawed stake if any is due, else start thawing part of the stake."""
            nd = nodes[who]
            before = int(cdx.balanceOf(nd))
            try:
                staking.withdraw_unbonded(sender=nd)
                self.stake_out[nd.address] = self.stake_out.get(nd.address, 0) + int(cdx.balanceOf(nd)) - before
                return
            except ape.exceptions.ContractLogicError:
                pass  # nothing thawed yet: nothing moved
            info = staking.node(nd)
            amount = int(info.stake) * bps // 10_000
            if info.status in (1, 2) and amount and (amount == info.stake or info.stake - amount >= PARAMS.min_stake):
                staking.request_unbond(amount, sender=nd)

        @rule(good=st.booleans())
        def report(self, good):
            epoch = self._epoch()  # the current epoch takes reports until its window closes
            if epoch in self.reported or staking.paused():
                return
            reports = [(n.address, 10, 10 if good else 0, 50) for n in nodes if staking.node(n).status in (1, 2)]
            if reports:
                staking.submit_reports(epoch, reports, sender=reporter)
                self.reported.add(epoch)

        @rule(seconds=st.sampled_from([600, EPOCH, 4 * EPOCH, THAW + 1]))
        def time_passes(self, seconds):
            chain.pending_timestamp += seconds
            chain.mine()
            while True:
                e = int(staking.next_epoch())
                if chain.pending_timestamp < int(staking.genesis()) + (e + 1) * EPOCH + PARAMS.report_window:
                    break
                while not staking.finalize_epoch(e, 16, sender=reporter).return_value:
                    pass

        @rule(which=st.sampled_from(["meter", "router", "licenses", "staking", "registry"]))
        def toggle_pause(self, which):
            c = {"meter": meter, "router": router, "licenses": lm, "staking": staking, "registry": reg}[which]
            (c.unpause if c.paused() else c.pause)(sender=admin)

        # ------------------------------------------------------------------ invariants
        @invariant()
        def conservation_and_stake(self):
            m_int = sum(cf.escrow(c, "USDC") for c in consumers) + sum(int(meter.node_balance(n, usdc)) for n in nodes)
            m_int += int(meter.fee_balance(usdc))
            assert int(usdc.balanceOf(meter)) == m_int
            r_int = sum(int(router.vault(c, usdc)) + int(router.claimable(c, usdc)) for c in self.capsules)
            assert int(usdc.balanceOf(router)) == r_int
            s_int = (
                int(staking.rewards_undistributed()) + int(staking.rewards_reserved()) + int(staking.rewards_credited())
            )
            assert int(usdc.balanceOf(staking)) == s_int
            assert int(usdc.balanceOf(lm)) == 0
            infos = [staking.node(n) for n in nodes]
            stake, thaw = sum(int(i.stake) for i in infos), sum(int(i.unbonding) for i in infos)
            assert (stake, thaw) == (int(staking.total_staked()), int(staking.total_thawing()))
            burnt = int(staking.burnt_stake())  # slashed CDX is burnt: it stays in AccessStaking, counted
            assert int(cdx.balanceOf(staking)) == stake + thaw + burnt
            for sym, tok in (("USDC", usdc), ("CDX", cdx)):
                assert self._held(tok) == self.supply0[sym] + self.minted[sym], f"{sym} created or lost"
            # stake leaves only through thawing: what is not held or withdrawn was slashed (burnt, never paid out)
            slashed = 0
            for n, i in zip(nodes, infos):
                s = self.stake_in.get(n.address, 0) - self.stake_out.get(n.address, 0) - int(i.stake) - int(i.unbonding)
                assert s >= 0
                slashed += s
            assert burnt == slashed and int(cdx.balanceOf(treasury)) == self.treasury_cdx0

        @invariant()
        def lineage_hashes_and_revocations(self):
            for cid, (h, parents) in self.capsules.items():
                assert bytes(reg.capsule(cid).content_hash) == h
                assert all(p < cid for p in parents)
            ts = chain.pending_timestamp
            for cred, holder in self.creds.items():
                cr = lm.credential(cred)
                dead = (cr.revoked_at != 0 and cr.revoked_at <= ts) or (cr.expires_at != 0 and cr.expires_at <= ts)
                if dead:
                    assert not lm.authorize(cred, holder, INFERENCE, ts)
                    assert lm.check_usage(cred, 1, INFERENCE, ts, holder).status in (Reject.REVOKED, Reject.EXPIRED)

    run_state_machine_as_test(
        System,
        settings=settings(
            max_examples=2,
            stateful_step_count=15,
            deadline=None,
            # no shrinking: each shrink step replays a chain history;
            # the unshrunk 15-step failure is printed as is
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
