"""Gas of the royalty paths against DESIGN §6 and 0xSplits v1 SplitMain; writes `.gas/royalty.json`
and the SplitMain anchor rows of `.gas/anchor.json`.

What is measured (anvil, cancun):
- `credit`: the wired creditor's transaction minus its intrinsic cost (21,000 + calldata), i.e.
  the execution gas a LicenseManager / UsageMeter pays on top of its token transfer, on every
  path: a cold single call (as in one `purchase`), the hot path (a batch of credits in one
  transaction, like `UsageMeter.ingest`; marginal cost of one more credit, including the
  caller's warm CALL and loop), and a credit to a capsule whose owner has just claimed.
- `propagate` with K = 1, 2, 8 parents, warm (lineage snapshot taken by an earlier
  propagation): execution gas, what one hop costs inside a keeper's transaction; also the first
  propagation of a capsule (one-time lineage snapshot) and a hop after the parents claimed.
- `claim`: the owner's whole transaction, including the 21,000 base and the ERC-20 transfer.
- The full royalty cycle per recipient in the steady state, for K recipients: revenue in
  (`pay`), one hop (`propagate`), every recipient claims; whole transactions, divided by K.
  The same cycle on 0xSplits v1 SplitMain (compiled with npm solcjs, tests/gas/anchors/): a
  plain ERC-20 transfer into the split, `distributeERC20`, every recipient `withdraw`s.
"""

from __future__ import annotations

import pytest
from anchors import AnchorUnavailable, at, container

from gasrows import record, record_anchor

AREA = "royalty"
SPLITMAIN = "0xSplits v1 SplitMain"
KS = (2, 8)
AMOUNT = 10**9
# EVM schedule (cancun), for the floors written beside each row (docs/royalty.md explains them).
COLD_SLOAD, WARM, SSTORE_SET, SSTORE_RESET, COLD_ACCOUNT = 2_100, 100, 20_000, 2_900, 2_600


def log_cost(topics: int, data_words: int) -> int:
    return 375 + 375 * topics + 8 * 32 * data_words


CREDITED_LOG = log_cost(3, 2)  # RoyaltyCredited: sig, capsule, token | amount, payer
PROPAGATED_LOG = log_cost(3, 3)  # RoyaltyPropagated: sig, capsule, token | amount, to_parents, to_owner
SLOT_RW = COLD_SLOAD + SSTORE_RESET  # a live slot read then rewritten
# credit: creditor flag + balance slot read/write + event
CREDIT_FLOOR = COLD_SLOAD + SLOT_RW + CREDITED_LOG


def propagate_floor(k: int) -> int:
    """Lineage snapshot slots (3 parents each) + own slot + each parent's slot + event."""
    return COLD_SLOAD * -(-k // 3) + SLOT_RW * (1 + k) + PROPAGATED_LOG


# Bound of the full cycle against the measured SplitMain cycle: the target is 1.0× (issue 17), met
# at K=2; at K=8 a regression bound only (docs/royalty.md: each claim's ERC-721 ownership check,
# ~5k, has no counterpart in SplitMain, whose recipients are plain addresses).
CYCLE_GUARD = {2: 1.0, 8: 1.04}


def intrinsic(tx) -> int:
    return 21_000 + sum(4 if b == 0 else 16 for b in bytes(tx.data))


def execution(receipt) -> int:
    return receipt.gas_used - intrinsic(receipt.transaction)


@pytest.fixture(scope="module")
def batcher(project, admin):
    """Stands in for the UsageMeter's `ingest`: many credits in one transaction."""
    return admin.deploy(project.MockCreditor)


@pytest.fixture(scope="module")
def router(deploy_router, batcher):
    # accounts[8] stands in for the LicenseManager (one credit per purchase), the batcher for the meter.
    return deploy_router(meter=batcher)


@pytest.fixture(scope="module")
def creditor(accounts, router):
    return accounts[8]


@pytest.fixture
def funded(usdc, router, consumer):
    """A payer with a standing (finite) allowance: each `pay` also writes the allowance."""
    usdc.mint(consumer, 10**24, sender=consumer)
    usdc.approve(router, 10**24, sender=consumer)
    return consumer


def _family(router, usdc, funded, mint_capsule, creator, k, owner_share=True):
    parents = [mint_capsule(creator) for _ in range(k)]
    for p in parents:
        router.pay(p, usdc, 1, sender=funded)  # live parent slots
    shares = [10_000 // (2 * k) if owner_share else 10_000 // k] * k
    child = mint_capsule(creator, parents=list(zip(parents, shares)))
    router.pay(child, usdc, AMOUNT, sender=funded)
    return child, parents


# ----------------------------------------------------------------------------------- credit


def test_gas__credit_cold_alone(router, usdc, creditor, creator, funded, mint_capsule):
    c = mint_capsule(creator)
    router.pay(c, usdc, 1, sender=funded)  # a live slot: the steady state
    usdc.mint(router, 10**6, sender=creditor)
    gas = execution(router.credit(c, usdc, 10**6, sender=creditor))
    record(
        AREA,
        "credit (single call, all slots cold)",
        gas,
        f"≤ 10k beyond the token transfer (DESIGN §6), on every path; floor {CREDIT_FLOOR:,}",
    )
    assert gas <= 10_000


def test_gas__credit_hot_path(admin, router, batcher, usdc, creator, funded, mint_capsule):
    meter = batcher
    ids = [mint_capsule(creator) for _ in range(17)]
    for c in ids:
        router.pay(c, usdc, 1, sender=funded)
    usdc.mint(router, 10**12, sender=admin)
    g16 = meter.credit_batch(router, usdc, ids[:16], 1000, sender=admin).gas_used
    g1 = meter.credit_batch(router, usdc, ids[16:], 1000, sender=admin).gas_used
    # marginal cost of one credit with the wired-creditor slot warm (vault slot cold)
    marginal = (g16 - g1) // 15
    hot_floor = CREDIT_FLOOR - COLD_SLOAD + WARM + WARM  # creditor flag warm, warm CALL
    record(
        AREA,
        "credit (hot path: batched, per credit)",
        marginal,
        f"≤ 10k beyond the token transfer (DESIGN §6); floor {hot_floor:,}",
    )
    assert marginal <= 10_000


def test_gas__credit_after_claim(router, usdc, creditor, creator, funded, mint_capsule):
    """The owner claimed everything: the slot keeps its live bit, so the next credit is no fresh write."""
    c = mint_capsule(creator)
    router.pay(c, usdc, 10**6, sender=funded)
    router.claim(c, usdc, creator, sender=creator)
    assert router.vault(c, usdc) == 0 and router.claimable(c, usdc) == 0
    usdc.mint(router, 10**6, sender=creditor)
    gas = execution(router.credit(c, usdc, 10**6, sender=creditor))
    record(
        AREA,
        "credit (single call, after the owner claimed)",
        gas,
        f"≤ 10k beyond the token transfer (DESIGN §6), on every path; floor {CREDIT_FLOOR:,}",
    )
    assert gas <= 10_000


def test_gas__credit_first_ever(router, usdc, creditor, creator, mint_capsule):
    """The first revenue a (capsule, token) ever gets writes a fresh slot: one-time, listed as such."""
    c = mint_capsule(creator)
    usdc.mint(router, 10**6, sender=creditor)
    gas = execution(router.credit(c, usdc, 10**6, sender=creditor))
    record(
        AREA,
        "credit (first revenue of a capsule in a token: fresh slot, one-time)",
        gas,
        "one-time per (capsule, token)",
    )
    assert gas <= 30_000


# ----------------------------------------------------------------------------------- propagate


@pytest.mark.parametrize("k", [1, 2, 8])
def test_gas__propagate(router, usdc, creator, funded, mint_capsule, stranger, k):
    child, _ = _family(router, usdc, funded, mint_capsule, creator, k)
    assert not router.lineage_cached(child)
    first = execution(router.propagate(child, usdc, sender=stranger))
    assert router.lineage_cached(child)
    s = "s" if k > 1 else ""
    record(
        AREA,
        f"propagate one hop, {k} parent{s} (first time: lineage snapshot)",
        first,
        "one-time per capsule: registry calls (its parents, and whether each has parents) + ceil(K/3) fresh slots",
    )
    router.pay(child, usdc, AMOUNT, sender=funded)
    gas = execution(router.propagate(child, usdc, sender=stranger))
    target = 15_000 + 6_000 * k
    record(
        AREA,
        f"propagate one hop, {k} parent{s} (warm)",
        gas,
        f"≤ 15k + 6k·K = {target // 1000}k (DESIGN §6); floor {propagate_floor(k):,}",
    )
    assert gas <= target


def _hop_after_claims(router, usdc, creator, funded, mint_capsule, stranger, k):
    child, parents = _family(router, usdc, funded, mint_capsule, creator, k)
    router.propagate(child, usdc, sender=stranger)
    for c in [child, *parents]:
        router.claim(c, usdc, creator, sender=creator)
        assert router.vault(c, usdc) == 0 and router.claimable(c, usdc) == 0
    router.pay(child, usdc, AMOUNT, sender=funded)
    return execution(router.propagate(child, usdc, sender=stranger))


def test_gas__propagate_after_parents_claimed(router, usdc, creator, funded, mint_capsule, stranger, splitmain):
    g1 = _hop_after_claims(router, usdc, creator, funded, mint_capsule, stranger, 1)
    g8 = _hop_after_claims(router, usdc, creator, funded, mint_capsule, stranger, 8)
    per = (g8 - g1) // 7
    record(AREA, "propagate one hop, 8 parents (after every parent claimed)", g8, "≤ 15k + 6k·K = 63k (DESIGN §6)")
    record(
        AREA,
        "propagate, per extra parent (after the parents claimed)",
        per,
        f"≤ {SPLITMAIN} per extra recipient, warm; floor {(propagate_floor(8) - propagate_floor(1)) // 7:,}",
    )
    assert g8 <= 63_000
    if splitmain is None:
        pytest.skip(f"{SPLITMAIN} anchor not available here: the per-parent figure is recorded, not compared")
    assert per <= splitmain["per_recipient_warm"]


# ----------------------------------------------------------------------------------- claim


def test_gas__claim(router, usdc, creator, funded, mint_capsule, stranger):
    child, _ = _family(router, usdc, funded, mint_capsule, creator, 2)
    router.propagate(child, usdc, sender=stranger)
    usdc.mint(creator, 1, sender=creator)  # the recipient already holds the token
    gas = router.claim(child, usdc, creator, sender=creator).gas_used
    record(AREA, "claim (propagated vault, whole tx incl. transfer)", gas, "≤ 60k incl. the transfer (DESIGN §6)")
    assert gas <= 60_000


def test_gas__claim_with_propagation(router, usdc, creator, funded, mint_capsule):
    """A claim propagates the vault first, through `propagate` (a call to itself, outside the lock)."""
    child, _ = _family(router, usdc, funded, mint_capsule, creator, 2)
    usdc.mint(creator, 1, sender=creator)
    first = router.claim(child, usdc, creator, sender=creator).gas_used
    assert router.lineage_cached(child)
    record(
        AREA,
        "claim incl. propagating 2 parents (first hop of the capsule: lineage snapshot, one-time)",
        first,
        "one-time per capsule: registry calls + one fresh slot",
    )
    router.pay(child, usdc, AMOUNT, sender=funded)
    gas = router.claim(child, usdc, creator, sender=creator).gas_used
    record(AREA, "claim incl. propagating 2 parents (whole tx)", gas, None)
    # the claim, the hop, and the call into `propagate` (~1k: a warm CALL and its calldata)
    assert gas <= 60_000 + 2 * 6_000 + 1_000


# ----------------------------------------------------------------------------------- full cycle


def _cycle(router, usdc, payer, keeper, owner, child, parents) -> list[int]:
    """Revenue in, one hop, every recipient (the child's owner and each parent's) claims: each tx's gas."""
    txs = [router.pay(child, usdc, AMOUNT, sender=payer), router.propagate(child, usdc, sender=keeper)]
    txs += [router.claim(c, usdc, owner, sender=owner) for c in [child, *parents]]
    assert all(router.vault(c, usdc) == 0 and router.claimable(c, usdc) == 0 for c in [child, *parents])
    return [t.gas_used for t in txs]


def _txs(names: tuple[str, str, str], gas: list[int]) -> str:
    """'pay 1 + hop 2 + 2 claims × 3': the cycle's transactions, as measured (README, docs/royalty.md)."""
    first, second, each = names
    rest = gas[2:]
    tail = f"{len(rest)} {each}s × {rest[0]:,}" if len(set(rest)) == 1 else " + ".join(f"{g:,}" for g in rest)
    return f"{first} {gas[0]:,} + {second} {gas[1]:,} + {tail}"


@pytest.mark.parametrize("k", KS)
def test_gas__full_cycle_per_recipient(router, usdc, creator, funded, mint_capsule, stranger, splitmain, k):
    """K recipients: the capsule's owner and K - 1 parents, each 1/K of the revenue (as a K-way split)."""
    parents = [mint_capsule(creator) for _ in range(k - 1)]
    child = mint_capsule(creator, parents=[(p, 10_000 // k) for p in parents])
    usdc.mint(creator, 1, sender=creator)  # the recipient already holds the token
    router.pay(mint_capsule(creator), usdc, 1, sender=funded)  # the router holds others' revenue (never 0)
    _cycle(router, usdc, funded, stranger, creator, child, parents)  # first cycle: fresh slots, snapshot
    gas = _cycle(router, usdc, funded, stranger, creator, child, parents)
    per = sum(gas) // k
    state = "met" if CYCLE_GUARD[k] <= 1.0 else "open: floor in docs/royalty.md"
    record(
        AREA,
        f"full royalty cycle per recipient, K={k} (steady state: pay + hop + every recipient claims)",
        per,
        f"≤ 1.0× {SPLITMAIN}, same cycle ({state}); whole txs: {_txs(('pay', 'hop', 'claim'), gas)}",
    )
    if splitmain is None:
        pytest.skip(f"{SPLITMAIN} anchor not available here: the cycle is recorded, not compared")
    assert per <= splitmain[f"cycle_k{k}"] * CYCLE_GUARD[k]


# ----------------------------------------------------------------------------------- anchor


@pytest.fixture(scope="module")
def splitmain(admin, usdc, stranger, consumer):
    """Measures 0xSplits v1 SplitMain on this chain and records its anchor rows (None if absent)."""
    try:
        main = container("splitmain", "SplitMain").deploy(sender=admin)
    except AnchorUnavailable as e:
        print(f"\n{SPLITMAIN} anchor skipped: {e}")
        return None
    payer, keeper = consumer, stranger
    usdc.mint(payer, 10**24, sender=payer)
    zero = "0x" + "00" * 20

    def make_split(k: int, base: int):
        accts = [f"0x{base + i:040x}" for i in range(1, k + 1)]  # ascending, as SplitMain requires
        allocs = [1_000_000 // k] * k
        allocs[-1] += 1_000_000 - sum(allocs)
        main.createSplit(accts, allocs, 0, zero, sender=admin)
        split = main.predictImmutableSplitAddress(accts, allocs, 0)
        return split, accts, allocs

    def cycle(split, accts, allocs):
        txs = [
            usdc.transfer(split, AMOUNT, sender=payer),
            main.distributeERC20(split, usdc, accts, allocs, 0, keeper, sender=keeper),
        ]
        txs += [main.withdraw(a, 0, [usdc], sender=keeper) for a in accts]
        return txs

    cycle(*make_split(2, 0xA000))  # SplitMain's own token balance is live from here on
    out = {}
    distribute = {}
    for k in KS:
        s = make_split(k, 0xB000 + 0x100 * k)
        first = cycle(*s)
        distribute[("fresh", k)] = first[1].gas_used
        steady = cycle(*s)
        distribute[("warm", k)] = steady[1].gas_used
        out[f"cycle_k{k}"] = sum(t.gas_used for t in steady) // k
        txs = _txs(("transfer", "distributeERC20", "withdraw"), [t.gas_used for t in steady])
        record_anchor(
            f"{SPLITMAIN}: full cycle per recipient, K={k} (steady state)",
            out[f"cycle_k{k}"],
            f"ERC-20 transfer into the split + distributeERC20 + every recipient withdraws, whole txs / K: {txs}",
        )
    lo, hi = KS
    out["per_recipient_warm"] = (distribute[("warm", hi)] - distribute[("warm", lo)]) // (hi - lo)
    out["per_recipient_fresh"] = (distribute[("fresh", hi)] - distribute[("fresh", lo)]) // (hi - lo)
    record_anchor(
        f"{SPLITMAIN}: distributeERC20 per extra recipient, warm (1 wei left)",
        out["per_recipient_warm"],
        f"(distribute K={hi} - K={lo}) / {hi - lo}, recipients' balances left at 1 wei",
    )
    record_anchor(
        f"{SPLITMAIN}: distributeERC20 per extra recipient, fresh",
        out["per_recipient_fresh"],
        f"(distribute K={hi} - K={lo}) / {hi - lo}, first distribution to new recipients",
    )
    assert at("splitmain", "SplitWallet", s[0]).splitMain() == main.address
    return out
