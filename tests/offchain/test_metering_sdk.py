"""codexfield.sdk.metering: signing, node-side verification, the durable consumer ledger, batching."""

from __future__ import annotations

import threading

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from codexfield.sdk.metering import (
    HALF_N,
    SECP256K1_N,
    ConsumerLedger,
    Domain,
    Voucher,
    VoucherBatcher,
    VoucherError,
    commit_group,
    recover_signer,
    sign_voucher,
    verify_voucher,
)

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "ab" * 20)
NODE = "0x" + "cd" * 20
KEY = Account.create()


def mk(mu=10, calls=1, failures=0, latency=5, deadline=10**10, node=NODE, cred=1, payer=None, issued_at=50):
    return Voucher(cred, node, payer or KEY.address, 64, mu, calls, failures, latency, 2, issued_at, deadline)


def test_sign_and_recover__low_s_and_v_27_28():
    v = mk()
    sig = sign_voucher(v, DOMAIN, KEY.key)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= HALF_N
    assert recover_signer(v, DOMAIN, sig) == KEY.address


def test_recover__malleated_signature_refused():
    v = mk()
    sig = sign_voucher(v, DOMAIN, KEY.key)
    s = int.from_bytes(sig[32:64], "big")
    bad = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(VoucherError, match="malleated"):
        recover_signer(v, DOMAIN, bad)
    with pytest.raises(VoucherError, match="27 or 28"):
        recover_signer(v, DOMAIN, sig[:64] + b"\x01")
    with pytest.raises(VoucherError, match="65 bytes"):
        recover_signer(v, DOMAIN, sig[:64])


def test_domain_binds_chain_and_contract():
    v = mk()
    sig = sign_voucher(v, DOMAIN, KEY.key)
    other = Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract)
    assert recover_signer(v, other, sig) != KEY.address


def test_verify__accepts_next_voucher_and_returns_deltas():
    v = mk(mu=30, calls=3, failures=1, latency=90)
    sig = sign_voucher(v, DOMAIN, KEY.key)
    assert verify_voucher(v, sig, DOMAIN, holder=KEY.address, previous=(10, 1, 0, 30), now=0, node=NODE) == (
        20,
        2,
        1,
        60,
    )


@pytest.mark.parametrize(
    "voucher,previous,match",
    [
        (mk(mu=10), (10, 1, 0, 5), "adds nothing"),
        (mk(mu=20, calls=1), (10, 2, 0, 5), "decreased"),
        (mk(failures=2, calls=1), (0, 0, 0, 0), "failures exceed"),
        (mk(deadline=5), (0, 0, 0, 0), "deadline"),
        (mk(issued_at=1_000), (0, 0, 0, 0), "in the future"),
        (mk(issued_at=10), (0, 0, 0, 0), "settlement window"),
        (mk(payer="0x" + "ee" * 20), (0, 0, 0, 0), "not the credential holder"),
    ],
)
def test_verify__refuses_what_the_meter_refuses(voucher, previous, match):
    sig = sign_voucher(voucher, DOMAIN, KEY.key)
    with pytest.raises(VoucherError, match=match):
        verify_voucher(voucher, sig, DOMAIN, holder=KEY.address, previous=previous, now=100, settlement_window=60)


def test_verify__wrong_signer_or_node_refused_delegate_accepted():
    v = mk()
    hot = Account.create()
    sig = sign_voucher(v, DOMAIN, hot.key)
    with pytest.raises(VoucherError, match="not by the payer"):
        verify_voucher(v, sig, DOMAIN, holder=KEY.address, now=0)
    assert verify_voucher(v, sig, DOMAIN, holder=KEY.address, now=0, extra_signers=[hot.address])
    with pytest.raises(VoucherError, match="not this node"):
        verify_voucher(v, sig, DOMAIN, holder=KEY.address, now=0, node="0x" + "11" * 20)


def test_type_string__matches_the_contract_source():
    from pathlib import Path

    from codexfield.sdk.metering import VOUCHER_TYPE_STRING

    src = (Path(__file__).resolve().parents[2] / "contracts/modules/meter_vouchers.vy").read_text()
    assert f'"{VOUCHER_TYPE_STRING}"' in src


def test_ledger__payer_is_bound_into_the_channel(tmp_path):
    wallet = "0x" + "77" * 20  # a contract wallet that added KEY as its sigAuth delegate
    ledger = ConsumerLedger(tmp_path / "w.sqlite", DOMAIN, KEY.key, payer=wallet)
    v, sig = ledger.next_voucher(1, NODE, mu=3, purpose=64, node_price_per_mu=2, deadline=10**10, issued_at=77)
    assert (v.payer.lower(), v.issued_at) == (wallet, 77) and recover_signer(v, DOMAIN, sig) == KEY.address
    assert ConsumerLedger(tmp_path / "w.sqlite", DOMAIN, KEY.key).counters(1, NODE) == (0, 0, 0, 0)


def test_ledger__restart_never_signs_lower(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = ConsumerLedger(path, DOMAIN, KEY.key)
    v1, _ = ledger.next_voucher(1, NODE, mu=10, purpose=64, node_price_per_mu=2, deadline=10**10)
    v2, _ = ledger.next_voucher(1, NODE, mu=5, calls=2, latency_ms=7, purpose=64, node_price_per_mu=2, deadline=10**10)
    assert v2.counters() == (15, 3, 0, 7)
    reopened = ConsumerLedger(path, DOMAIN, KEY.key)  # a restart
    assert reopened.counters(1, NODE) == (15, 3, 0, 7)
    v3, sig = reopened.next_voucher(1, NODE, mu=1, purpose=64, node_price_per_mu=2, deadline=10**10)
    assert v3.cumulative_mu == 16 and recover_signer(v3, DOMAIN, sig) == KEY.address
    assert reopened.counters(2, NODE) == (0, 0, 0, 0)  # channels are independent


def test_ledger__failed_signing_still_leaves_counters_at_least_signed(tmp_path):
    ledger = ConsumerLedger(tmp_path / "l.sqlite", DOMAIN, b"\x00" * 31 + b"\x01")
    with pytest.raises(VoucherError):
        ledger.next_voucher(1, NODE, mu=-1, purpose=64, node_price_per_mu=2, deadline=10**10)
    assert ledger.counters(1, NODE) == (0, 0, 0, 0)


def test_ledger__concurrent_signers_never_sign_the_same_counters(tmp_path):
    path = tmp_path / "c.sqlite"
    seen, lock = [], threading.Lock()

    def work():
        ledger = ConsumerLedger(path, DOMAIN, KEY.key)
        for _ in range(10):
            v, _ = ledger.next_voucher(1, NODE, mu=1, purpose=64, node_price_per_mu=2, deadline=10**10)
            with lock:
                seen.append(v.cumulative_mu)

    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(seen) == list(range(1, 41))


def test_ledger__opened_by_many_threads_at_once__every_one_opens(tmp_path):
    """A fresh ledger file opened by six consumers together: SQLite refuses a journal-mode
    change at once while another connection converts the file (it lost one consumer in about
    one start in thirty); `codexfield.sqlite.wal` waits for it instead."""
    errors: list[BaseException] = []

    def work(path):
        try:
            ConsumerLedger(path, DOMAIN, Account.create().key).next_voucher(
                1, NODE, mu=1, purpose=64, node_price_per_mu=2, deadline=10**10
            )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    for trial in range(60):
        path = tmp_path / f"fresh-{trial}.sqlite"
        threads = [threading.Thread(target=work, args=(path,)) for _ in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert errors == []


def test_commit_group__several_consumers_one_transaction__a_refused_op_leaves_the_others(tmp_path):
    path = tmp_path / "shared.sqlite"
    a, b = ConsumerLedger(path, DOMAIN, KEY.key), ConsumerLedger(path, DOMAIN, Account.create().key)
    call = dict(mu=2, latency_ms=0, purpose=64, node_price_per_mu=2, deadline=10**10, issued_at=50)
    fa, err = commit_group(
        [
            (a, "begin_call", (1, NODE, "in a"), dict(call, base=(0, 0, 0, 0))),
            (b, "begin_call", (2, NODE, "in b"), dict(call, base=(5, 1, 0, 0))),  # not what b signed: refused
        ]
    )
    assert isinstance(err, VoucherError) and "signed (0, 0, 0, 0)" in str(err)
    assert fa.voucher.counters() == (2, 1, 0, 0) and recover_signer(fa.voucher, DOMAIN, fa.signature) == KEY.address
    assert a.inflight(1, NODE) == fa and b.inflight(2, NODE) is None and b.counters(2, NODE) == (0, 0, 0, 0)
    # The answer's ack resolves the call and the next call begins, in one transaction.
    ack = {"cumulative_calls": "1"}
    _, f2 = commit_group(
        [
            (a, "record_ack", (1, NODE, ack), {"resolved": True}),
            (a, "begin_call", (1, NODE, "again"), dict(call, base=(2, 1, 0, 0))),
        ]
    )
    assert f2.voucher.counters() == (4, 2, 0, 0) and a.last_ack(1, NODE) == ack and a.inflight(1, NODE) == f2
    with pytest.raises(ValueError, match="shares one file"):
        commit_group(
            [
                (a, "record_ack", (1, NODE, ack), {}),
                (ConsumerLedger(tmp_path / "x.sqlite", DOMAIN, KEY.key), "record_ack", (1, NODE, ack), {}),
            ]
        )


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 50)), min_size=1, max_size=40))
def test_batcher__keeps_latest_per_channel_and_flushes_at_size(events):
    submitted = []
    b = VoucherBatcher(lambda vs, sigs: submitted.append(list(vs)), max_batch=2, max_age_s=10**9)
    latest: dict[int, int] = {}
    for cred, mu in events:
        cur = latest.get(cred, 0) + mu
        latest[cred] = cur
        b.add(mk(cred=cred, mu=cur), b"\x00" * 65)
    b.flush()
    flat = [v for batch in submitted for v in batch]
    assert all(len(batch) <= 2 for batch in submitted)
    final: dict[int, int] = {}
    for v in flat:
        final[v[0]] = max(final.get(v[0], 0), v[4])  # (credential_id, node, payer, purpose, cumulative_mu, ...)
    assert final == latest


def test_batcher__time_trigger():
    now = [0.0]
    b = VoucherBatcher(lambda vs, sigs: None, max_batch=64, max_age_s=5, clock=lambda: now[0])
    b.add(mk(), b"\x00" * 65)
    assert not b.due()
    now[0] = 5.0
    assert b.due()
    b.flush()
    assert len(b) == 0 and not b.due()
    with pytest.raises(ValueError):
        VoucherBatcher(lambda *a: None, max_batch=65)
