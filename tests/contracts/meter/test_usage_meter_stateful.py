"""Hypothesis state machine over the UsageMeter: consumers, nodes, credentials, random vouchers
(fresh, replayed, stale, malleated, forged, hot-key signed, from revoked credentials, dated in or
out of the settlement window, submitted by their node or by another one), deposits, withdrawal
requests, thaws, hot-key revocations and time passing.

Invariants (DESIGN §5 and issue 12): conservation across escrow + node balances + fee pool +
router to the wei; a voucher is never paid twice and settled counters never decrease; nothing is
paid past a quota or for usage dated after a revocation takes effect; a voucher valid when
signed is payable for the settlement window whatever the consumer does afterwards (revoke its
sigAuth hot key, request and wait out a withdrawal: the model's verdict never looks at them);
only the node's own settlements of paid vouchers move its usage counters.
"""

from __future__ import annotations

from eth_account import Account
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from codexfield import scopes
from codexfield.sdk.metering import SECP256K1_N, Voucher, sign_voucher

from meter_helpers import EPOCH, FEE_BPS, NODE_PRICE, PRICE, THAW, WINDOW, terms_tuple

INFER = scopes.mask_of(["inference"])
QUOTA = 400
SIG_AUTH = b"sigAuth".ljust(32, b"\0")
MARGIN = 120  # seconds kept away from the window's edge (block times are not exact)


def test_meter_state_machine(system, admin, licensor, accounts, chain):
    usdc, meter, lm, router, identity = system.usdc, system.meter, system.lm, system.router, system.identity
    holders = [accounts[1], accounts[3], accounts[8]]
    nodes = [accounts[4], accounts[9]]
    system.register(accounts[9])
    hot = Account.create()  # holder 0's sigAuth hot key
    identity.addDelegate(holders[0], SIG_AUTH, hot.address, 10 * 86400, sender=holders[0])
    # credentials: 0 plain, 1 quota-limited, 2 revocable by the arbiter (admin holds ARBITER)
    kinds = [dict(), dict(quota=QUOTA), dict(revocation=2)]
    creds = []
    for h, kw in zip(holders, kinds):
        t = lm.create_terms(terms_tuple(system.capsule, usdc, **kw), sender=licensor).return_value
        creds.append(lm.purchase(t, h, 0, sender=h).return_value)

    def now() -> int:
        return max(chain.blocks.head.timestamp, chain.pending_timestamp - 1)

    class Meter(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snap = chain.snapshot()
            self.base_router = usdc.balanceOf(router)
            self.base_vault = router.vault(system.capsule, usdc)
            self.escrow = {h.address: meter.escrow(h, usdc) for h in holders}
            self.node_bal = {n.address: meter.node_balance(n, usdc) for n in nodes}
            self.fees = meter.fee_balance(usdc)
            self.license_paid = 0
            self.signed = {}  # (i, node) -> list of (voucher, sig) ever signed
            self.counters = {
                (i, n.address): tuple(meter.settled(creds[i], n, holders[i]))[:4] for i in range(3) for n in nodes
            }
            self.mu_used = {i: lm.credential(creds[i]).mu_used for i in range(3)}
            self.revoked_at = None  # when credential 2's revocation took effect
            self.hot_until = 10**12  # when the hot key stopped being valid
            self.usage = {}  # (node, epoch) -> [calls, failures, mu, failed_mu] of paid own settlements

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
        def request_withdrawal(self, i, frac):
            h = holders[i]
            meter.request_withdrawal(usdc, self.escrow[h.address] * frac // 100, sender=h)

        @rule(i=st.integers(0, 2))
        def withdraw_when_thawed(self, i):
            h = holders[i]
            w = meter.withdrawals(h, usdc)
            if w.amount == 0 or now() + 2 < w.ready_at:
                return
            if chain.pending_timestamp < w.ready_at:
                chain.pending_timestamp = w.ready_at
            before = usdc.balanceOf(h)
            meter.withdraw(usdc, h, sender=h)
            out = min(w.amount, self.escrow[h.address])
            assert usdc.balanceOf(h) - before == out
            self.escrow[h.address] -= out

        @rule(dt=st.sampled_from([60, 3_600, WINDOW // 2, THAW]))
        def time_passes(self, dt):
            chain.pending_timestamp = now() + dt

        @rule()
        def revoke_the_revocable(self):
            if self.revoked_at is None:
                tx = lm.revoke(creds[2], b"breach".ljust(32, b"\0"), sender=admin)
                self.revoked_at = chain.provider.get_block(tx.block_number).timestamp

        @rule()
        def revoke_hot_key(self):
            if self.hot_until == 10**12:
                tx = identity.revokeDelegate(holders[0], SIG_AUTH, hot.address, sender=holders[0])
                self.hot_until = chain.provider.get_block(tx.block_number).timestamp

        @rule(
            sender=st.integers(0, 1),
            picks=st.lists(
                st.tuples(
                    st.integers(0, 2),
                    st.integers(0, 1),
                    st.integers(0, 60),
                    st.integers(0, 3),
                    st.integers(0, 3),
                    st.sampled_from(
                        ["fresh", "fresh", "fresh", "hot", "replay", "stale", "malleated", "forged", "old"]
                    ),
                ),
                min_size=1,
                max_size=6,
            ),
        )
        def ingest(self, sender, picks):
            batch, sigs, expect = [], [], []
            pending = dict(self.counters)
            pending_mu = dict(self.mu_used)
            pending_escrow = dict(self.escrow)
            t = now()
            for i, ni, dmu, dcalls, dfail, kind in picks:
                node = nodes[ni].address
                key = (i, node)
                cur = pending[key]
                history = self.signed.setdefault(key, [])
                dfail = min(dfail, dcalls)
                if kind in ("replay", "stale") and history:
                    v, sig = history[-1] if kind == "replay" else history[0]
                else:
                    at = t - (WINDOW + MARGIN if kind == "old" else 0)
                    v = Voucher(
                        creds[i],
                        node,
                        holders[i].address,
                        INFER,
                        cur[0] + dmu + (kind == "forged"),
                        cur[1] + dcalls,
                        cur[2] + dfail,
                        cur[3] + dcalls * 7,
                        NODE_PRICE,
                        at,
                        at + 10**8,
                    )
                    if kind == "forged":
                        key_ = Account.create().key
                    elif kind == "hot" and i == 0:
                        key_ = hot.key
                    else:
                        key_ = holders[i].private_key
                    sig = sign_voucher(v, system.domain, key_)
                    if kind == "malleated":
                        s = int.from_bytes(sig[32:64], "big")
                        sig = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
                    elif kind not in ("forged", "old"):
                        history.append((v, sig))
                # the model's verdict: judged at issued_at; never looks at withdrawal requests
                c = (v.cumulative_mu, v.cumulative_calls, v.cumulative_failures, v.cumulative_latency_ms)
                d_mu = c[0] - cur[0]
                charge = d_mu * (PRICE + NODE_PRICE)
                holder = holders[i].address
                hot_signed = kind == "hot" and i == 0
                ok = (
                    node == nodes[sender].address
                    and kind not in ("forged", "malleated", "old")
                    and t <= v.issued_at + WINDOW - MARGIN  # replays of old vouchers may have aged out
                    and all(a >= b for a, b in zip(c, cur))
                    and any(a > b for a, b in zip(c, cur))
                    and not (hot_signed and self.hot_until <= v.issued_at)
                    and not (i == 2 and self.revoked_at is not None and v.issued_at >= self.revoked_at)
                    and not (i == 1 and pending_mu[i] + d_mu > QUOTA)
                    and pending_escrow[holder] >= charge
                )
                if kind in ("replay", "stale") and v.issued_at + WINDOW - MARGIN < t <= v.issued_at + WINDOW + MARGIN:
                    return  # too close to the window's edge to predict: skip this batch
                if ok:
                    pending[key] = c
                    pending_mu[i] += d_mu
                    pending_escrow[holder] -= charge
                batch.append(v.as_tuple())
                sigs.append(sig)
                expect.append(ok)
            who = nodes[sender]
            if len(batch) == 1 and not expect[0]:
                try:
                    meter.ingest(batch, sigs, sender=who)
                except Exception:
                    pass
                else:
                    raise AssertionError("a refused single voucher must revert")
                return
            tx = meter.ingest(batch, sigs, sender=who)
            applied = tx.events.filter(meter.UsageRecorded)
            assert tx.return_value == sum(expect) == len(applied)
            epoch = (chain.provider.get_block(tx.block_number).timestamp - meter.genesis()) // EPOCH
            for e in applied:
                lic, nod, fee = e.license_amount, e.node_amount, e.protocol_fee
                assert e.node == who.address  # only the node's own settlements
                assert lic + nod + fee == e.delta_mu * (PRICE + NODE_PRICE)
                assert fee == e.delta_mu * PRICE * FEE_BPS // 10_000 + e.delta_mu * NODE_PRICE * FEE_BPS // 10_000
                self.node_bal[e.node] += nod
                self.fees += fee
                self.license_paid += lic
                if e.paid:
                    u = self.usage.setdefault((e.node, epoch), [0, 0, 0, 0])
                    u[0] += e.delta_calls
                    u[1] += e.delta_failures
                    u[2] += e.delta_mu
                    u[3] += e.delta_mu * e.delta_failures // e.delta_calls if e.delta_calls else 0
            self.counters, self.mu_used, self.escrow = pending, pending_mu, pending_escrow

        @invariant()
        def conservation_model_and_monotonic_counters(self):
            escrows = {h.address: meter.escrow(h, usdc) for h in holders}
            node_bals = {n.address: meter.node_balance(n, usdc) for n in nodes}
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
                assert tuple(meter.settled(creds[i], n, holders[i]))[:4] == c
            for i in range(3):
                assert lm.credential(creds[i]).mu_used == self.mu_used[i]
            assert self.mu_used[1] <= QUOTA
            # only the node's own paid settlements reach its usage counters
            for (n, epoch), (calls, failures, mu, failed_mu) in self.usage.items():
                u = meter.node_usage(n, epoch)
                assert (u.calls, u.failures, u.mu, u.failed_mu) == (calls, failures, mu, failed_mu)

    run_state_machine_as_test(Meter, settings=settings(settings.default, max_examples=6, stateful_step_count=10))
