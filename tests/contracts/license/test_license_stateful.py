"""Stateful property test: purchases, consumption, revocations, transfers and time travel
against a small Python model of the license rules. `authorize` and `check_usage` must agree
with the model at every step (DESIGN 5: a revoked or expired credential never authorizes
usage after it takes effect; issue 12: the payer must have held the credential at the usage
time, a transferable credential cannot move again within the settlement window, the rate
allowance spans the windows since the last recorded one)."""

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

from codexfield import scopes
from codexfield.constants import Reject

from license_helpers import WINDOW

RESEARCH = scopes.BY_NAME["research"].mask
INFERENCE = scopes.BY_NAME["inference"].mask
COMMERCIAL = scopes.BY_NAME["commercial"].mask
MASK96 = 2**96 - 1

# Three small terms families that exercise every rule quickly (free: payment is unit-tested).
FAMILIES = [
    dict(
        upfront_fee=0,
        duration=1_000,
        mu_quota=100,
        rate_mu=30,
        rate_period=100,
        revocation=3,
        notice_period=50,
        max_credentials=3,
    ),
    dict(upfront_fee=0, duration=0, revocation=1, notice_period=0, transferable=True),
    dict(upfront_fee=0, duration=300, rate_mu=10, rate_period=60, revocation=0),
]


def holder_at(c, at):
    return c["prev"] if at < c["moved_at"] else c["holder"]


def model_status(c, t, mu, purpose, at, payer, check_rate=True):
    """The rules as documented, in the contract's check order."""
    if c is None:
        return Reject.UNKNOWN_CREDENTIAL, None
    issued, dur = c["issued_at"], t.get("duration", 30 * 86_400)
    if at < issued or at > 2**40 - 1 or (dur and at >= issued + dur):
        return Reject.EXPIRED, None
    if payer != holder_at(c, at):
        return Reject.NOT_HOLDER, None
    if c["revoked_at"] and at >= c["revoked_at"]:
        return Reject.REVOKED, None
    if purpose == 0 or purpose & ~(RESEARCH | INFERENCE):
        return Reject.PURPOSE_OUT_OF_SCOPE, None
    quota = t.get("mu_quota", 0)
    if mu > MASK96 - c["mu_used"] or (quota and mu > quota - c["mu_used"]):
        return Reject.QUOTA_EXCEEDED, None
    ws, wm = c["w_start"], c["w_mu"]
    rate = t.get("rate_mu", 0)
    if check_rate and rate:
        p = t["rate_period"]
        start = issued + (at - issued) // p * p
        if start > ws:  # unused allowance of the windows since the last recorded one
            older = rate * ((start - issued) // p) if ws == 0 else rate - wm + rate * ((start - ws) // p - 1)
            if mu > older + rate:
                return Reject.RATE_EXCEEDED, None
            ws, wm = start, max(0, mu - older)
        else:
            if mu > rate - wm:
                return Reject.RATE_EXCEEDED, None
            wm += mu
    return Reject.OK, (ws, wm)


def test_license_rules__match_model(lm, create, licensor, consumer, stranger, admin, meter, chain, accounts):
    terms_ids = [create(**f) for f in FAMILIES]
    holders = [consumer, stranger, accounts[9]]

    class Machine(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snap = chain.snapshot()
            self.now = chain.pending_timestamp + 10
            self.creds: dict[int, dict] = {}
            self.issued = [0, 0, 0]
            self.last = None

        def teardown(self):
            chain.restore(self.snap)

        def _tick(self):
            self.now += 1
            chain.pending_timestamp = self.now

        @rule(fam=st.integers(0, 2), h=st.integers(0, 2))
        def purchase(self, fam, h):
            self._tick()
            t = FAMILIES[fam]
            if t.get("max_credentials") and self.issued[fam] >= t["max_credentials"]:
                with ape.reverts("license: sold out"):
                    lm.purchase(terms_ids[fam], holders[h], 0, sender=holders[h])
                return
            tx = lm.purchase(terms_ids[fam], holders[h], 0, sender=holders[h])
            cid = tx.return_value
            ts = chain.blocks[tx.block_number].timestamp
            assert ts == self.now
            self.issued[fam] += 1
            self.creds[cid] = dict(
                fam=fam,
                holder=holders[h],
                issued_at=ts,
                mu_used=0,
                w_start=0,
                w_mu=0,
                revoked_at=0,
                prev=None,
                moved_at=0,
            )
            self.last = cid

        @precondition(lambda self: self.creds)
        @rule(
            data=st.data(),
            mu=st.integers(0, 40),
            purpose=st.sampled_from([RESEARCH, INFERENCE, RESEARCH | INFERENCE, COMMERCIAL, 0]),
            offset=st.one_of(st.sampled_from([-1, 0, 59, 60, 99, 100, 299, 300, 999, 1_000]), st.integers(-5, 1_200)),
        )
        def consume(self, data, mu, purpose, offset):
            cid = data.draw(st.sampled_from(sorted(self.creds)))
            c = self.creds[cid]
            t = FAMILIES[c["fam"]]
            at = c["issued_at"] + offset
            payer = data.draw(st.sampled_from([holder_at(c, at) or holders[0]] * 3 + holders))
            expected, window = model_status(c, t, mu, purpose, at, payer)
            assert lm.check_usage(cid, mu, purpose, at, payer).status == expected
            self._tick()
            assert lm.consume(cid, mu, purpose, at, payer, sender=meter).return_value.status == expected
            if expected == Reject.OK and mu:
                c["mu_used"] += mu
                c["w_start"], c["w_mu"] = window
            assert lm.credential(cid).mu_used == c["mu_used"]
            if t.get("rate_mu"):
                assert tuple(lm.rate_window(cid)) == (c["w_start"], c["w_mu"])
            self.last = cid

        @precondition(lambda self: self.creds)
        @rule(data=st.data(), who=st.sampled_from(["licensor", "arbiter", "stranger"]))
        def revoke(self, data, who):
            cid = data.draw(st.sampled_from(sorted(self.creds)))
            c = self.creds[cid]
            t = FAMILIES[c["fam"]]
            rev = t.get("revocation", 0)
            sender = {"licensor": licensor, "arbiter": admin, "stranger": stranger}[who]
            self._tick()
            if rev == 0:
                reason = "license: irrevocable"
            elif who == "arbiter" and rev & 2:
                reason, eff = None, self.now
            elif who == "licensor" and rev & 1:
                reason, eff = None, self.now + t.get("notice_period", 0)
            elif who == "licensor":
                reason = "license: not revocable by licensor"
            elif who == "arbiter":
                reason = "license: not revocable by arbiter"
            else:
                reason = "license: not revoker"
            if reason is None and c["revoked_at"] and eff >= c["revoked_at"]:
                reason = "license: already revoked"
            if reason:
                with ape.reverts(reason):
                    lm.revoke(cid, b"\x00" * 32, sender=sender)
            else:
                lm.revoke(cid, b"\x00" * 32, sender=sender)
                c["revoked_at"] = eff
            assert lm.credential(cid).revoked_at == c["revoked_at"]
            self.last = cid

        @precondition(lambda self: self.creds)
        @rule(data=st.data(), to=st.integers(0, 2))
        def transfer(self, data, to):
            cid = data.draw(st.sampled_from(sorted(self.creds)))
            c = self.creds[cid]
            self._tick()
            if FAMILIES[c["fam"]].get("transferable"):
                if c["moved_at"] and self.now < c["moved_at"] + WINDOW:
                    with ape.reverts("license: transfer cooldown"):
                        lm.transferFrom(c["holder"], holders[to], cid, sender=c["holder"])
                else:
                    lm.transferFrom(c["holder"], holders[to], cid, sender=c["holder"])
                    c["prev"], c["moved_at"], c["holder"] = c["holder"], self.now, holders[to]
            else:
                with ape.reverts("license: credential locked"):
                    lm.transferFrom(c["holder"], holders[to], cid, sender=c["holder"])
            self.last = cid

        @rule(seconds=st.sampled_from([1, 49, 50, 99, 250, 700, 1_001, WINDOW]))
        def travel(self, seconds):
            self.now += seconds

        @invariant()
        def views_agree_with_model(self):
            if self.last is None:
                return
            cid = self.last
            c = self.creds[cid]
            t = FAMILIES[c["fam"]]
            points = {self.now}
            if c["revoked_at"]:
                points |= {c["revoked_at"] - 1, c["revoked_at"]}
            if c["moved_at"]:
                points |= {c["moved_at"] - 1, c["moved_at"]}
            other = next(u for u in holders if u != c["holder"])
            assert not lm.authorize(cid, other, RESEARCH, self.now)
            for at in sorted(points):
                h = holder_at(c, at)
                ok = model_status(c, t, 1, RESEARCH, at, h, check_rate=False)[0] == Reject.OK
                assert lm.authorize(cid, h, RESEARCH, at) == ok, at
                assert lm.check_usage(cid, 1, RESEARCH, at, h).status == model_status(c, t, 1, RESEARCH, at, h)[0], at
                if c["revoked_at"] and at >= c["revoked_at"]:
                    assert not lm.authorize(cid, h, RESEARCH, at)  # DESIGN 5

    run_state_machine_as_test(Machine, settings=settings(max_examples=10, stateful_step_count=15))
