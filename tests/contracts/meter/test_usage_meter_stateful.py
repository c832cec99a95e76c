"""Hypothesis state machine over the UsageMeter: consumers, nodes, credentials, random vouchers
(fresh, replayed, stale, malleated, forged, from revoked credentials), deposits, thaws, withdrawals.

Invariants (DESIGN §5): conservation across escrow + node balances + fee pool + router to the wei;
a voucher is never paid twice and settled counters never decrease; nothing is paid past a quota or
after a revocation takes effect; thawed escrow can always leave.
"""

from __future__ import annotations

import time

from eth_account import Account
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from meter_helpers import FEE_BPS, NODE_PRICE, PRICE, THAW, terms_tuple

from codexfield import scopes
from codexfield.sdk.metering import SECP256K1_N, Voucher, sign_voucher

INFER = scopes.mask_of(["inference"])
QUOTA = 400


def test_meter_state_machine(system, admin, licensor, accounts, chain):
    usdc, meter, lm, router = system.usdc, system.meter, system.lm, system.router
    holders = [accounts[1], accounts[3], accounts[8]]
    nodes = [accounts[4].address, accounts[9].address]
    # credentials: 0 plain, 1 quota-limited, 2 revocable by the arbiter (admin holds ARBITER)
    kinds = [dict(), dict(quota=QUOTA), dict(revocation=2)]
    creds = []
    for h, kw in zip(holders, kinds):
        t = lm.create_terms(terms_tuple(system.capsule, usdc, **kw), sender=licensor).return_value
        creds.append(lm.purchase(t, h, 0, sender=h).return_value)

    class Meter(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snap = chain.snapshot()
            self.base_router = usdc.balanceOf(router)
            self.base_vault = router.vault(system.capsule, usdc)
            self.escrow = {h.address: meter.escrow(h, usdc) for h in holders}
            self.node_bal = {n: meter.node_balance(n, usdc) for n in nodes}
            self.fees = meter.fee_balance(usdc)
            self.license_paid = 0
            self.signed = {}  # (i, node) -> list of (voucher, sig) ever signed
            self.counters = {(i, n): tuple(meter.settled(creds[i], n)) for i in range(3) for n in nodes}
            self.mu_used = {i: lm.credential(creds[i]).mu_used for i in range(3)}
            self.revoked = False

        def teardown(self):
            chain.restore(self.snap)

        @rule(i=st.integers(0, 2), amount=st.integers(1, 5_000))
        def deposit(self, i, amount):
            h = holders[i]
            usdc.mint(h, amount, sender=admin)
            usdc.approve(meter, amount, sender=h)
            meter.deposit(usdc, amount, h, sender=h)
            self.escrow[h.address] += amount

        @rule(i=st.integers(0, 2), frac=st.integers(0, 100))
        def withdraw_after_thaw(self, i, frac):
            h = holders[i]
            amount = self.escrow[h.address] * frac // 100
            if amount == 0:
                return
            meter.request_withdrawal(usdc, amount, sender=h)
            chain.pending_timestamp += THAW
            before = usdc.balanceOf(h)
            meter.withdraw(usdc, sender=h)
            assert usdc.balanceOf(h) - before == amount
            self.escrow[h.address] -= amount

        @rule()
        def revoke_the_revocable(self):
            if not self.revoked:
                lm.revoke(creds[2], b"breach".ljust(32, b"\0"), sender=admin)
                self.revoked = True

        @rule(
            picks=st.lists(
                st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 60), st.integers(0, 3),
                          st.sampled_from(["fresh", "fresh", "fresh", "replay", "stale", "malleated", "forged"])),
                min_size=1, max_size=6,
            )
        )
        def ingest(self, picks):
            batch, sigs, expect = [], [], []
            pending = dict(self.counters)
            pending_mu = dict(self.mu_used)
            pending_escrow = dict(self.escrow)
            for i, ni, dmu, dcalls, kind in picks:
                node = nodes[ni]
                key = (i, node)
                cur = pending[key]
                history = self.signed.setdefault(key, [])
                if kind in ("replay", "stale") and history:
                    v, sig = history[-1] if kind == "replay" else history[0]
                elif kind == "forged":
                    v = Voucher(creds[i], node, INFER, cur[0] + dmu + 1, cur[1] + 1, 0, cur[3], NODE_PRICE,
                                int(time.time()) + 10**8)
                    sig = sign_voucher(v, system.domain, Account.create().key)
                else:
                    v = Voucher(creds[i], node, INFER, cur[0] + dmu, cur[1] + dcalls, 0, cur[3] + dcalls * 7,
                                NODE_PRICE, int(time.time()) + 10**8)
                    sig = sign_voucher(v, system.domain, holders[i].private_key)
                    if kind == "malleated":
                        s = int.from_bytes(sig[32:64], "big")
                        sig = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
                    else:
                        history.append((v, sig))
                # the model's verdict
                c = (v.cumulative_mu, v.cumulative_calls, v.cumulative_failures, v.cumulative_latency_ms)
                d_mu = c[0] - cur[0]
                charge = d_mu * (PRICE + NODE_PRICE)
                holder = holders[i].address
                # replayed/stale copies carry the holder's real signature: they pay exactly when they
                # still add something (e.g. a voucher refused earlier for escrow, now funded)
                ok = (
                    kind not in ("forged", "malleated")
                    and all(a >= b for a, b in zip(c, cur))
                    and any(a > b for a, b in zip(c, cur))
                    and not (i == 2 and self.revoked)
                    and not (i == 1 and pending_mu[i] + d_mu > QUOTA)
                    and pending_escrow[holder] >= charge
                )
                if ok:
                    pending[key] = c
                    pending_mu[i] += d_mu
                    pending_escrow[holder] -= charge
                batch.append(v.as_tuple())
                sigs.append(sig)
                expect.append(ok)
            if len(batch) == 1 and not expect[0]:
                try:
                    meter.ingest(batch, sigs, sender=accounts[4])
                except Exception:
                    pass
                else:
                    raise AssertionError("a refused single voucher must revert")
                return
            tx = meter.ingest(batch, sigs, sender=accounts[4])
            applied = tx.events.filter(meter.UsageRecorded)
            assert tx.return_value == sum(expect) == len(applied)
            for e in applied:
                lic, nod, fee = e.license_amount, e.node_amount, e.protocol_fee
                assert lic + nod + fee == e.delta_mu * (PRICE + NODE_PRICE)
                assert fee == e.delta_mu * PRICE * FEE_BPS // 10_000 + e.delta_mu * NODE_PRICE * FEE_BPS // 10_000
                self.node_bal[e.node] += nod
                self.fees += fee
                self.license_paid += lic
            self.counters, self.mu_used, self.escrow = pending, pending_mu, pending_escrow

        @invariant()
        def conservation_model_and_monotonic_counters(self):
            escrows = {h.address: meter.escrow(h, usdc) for h in holders}
            node_bals = {n: meter.node_balance(n, usdc) for n in nodes}
            fees = meter.fee_balance(usdc)
            # conservation to the wei: the meter holds exactly its internal balances, the router
            # received exactly the license parts
            assert usdc.balanceOf(meter) == sum(escrows.values()) + sum(node_bals.values()) + fees
            vault = router.vault(system.capsule, usdc) - self.base_vault
            assert usdc.balanceOf(router) - self.base_router == vault == self.license_paid
            assert escrows == self.escrow and node_bals == self.node_bal and fees == self.fees
            # counters never decrease (the model only moves them forward); nothing past quota or
            # after the revocation (the model never applies those)
            for (i, n), c in self.counters.items():
                assert tuple(meter.settled(creds[i], n)) == c
            for i in range(3):
                assert lm.credential(creds[i]).mu_used == self.mu_used[i]
            assert self.mu_used[1] <= QUOTA


    run_state_machine_as_test(Meter, settings=settings(settings.default, max_examples=6, stateful_step_count=10))
