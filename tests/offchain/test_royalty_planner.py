"""codexfield.royalty: split, breakdown and the settlement planner (pure Python)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from codexfield.cli.royalty import royalty_group
from codexfield.royalty import (
    BPS,
    RoyaltyError,
    breakdown,
    is_root,
    plan,
    settlement_order,
    split,
)


@st.composite
def dags(draw, max_nodes=30):
    """Registry-like graphs: capsule i's parents are among 1..i-1, shares sum <= 10,000."""
    n = draw(st.integers(1, max_nodes))
    owners = [f"0x{k:040x}" for k in range(1, 5)]
    graph = {}
    for c in range(1, n + 1):
        k = draw(st.integers(0, min(8, c - 1)))
        parents = draw(st.lists(st.integers(1, c - 1), min_size=k, max_size=k, unique=True)) if k else []
        shares = []
        left = BPS
        for _ in parents:
            s = draw(st.integers(0, left))
            shares.append(s)
            left -= s
        graph[c] = (draw(st.sampled_from(owners)), list(zip(parents, shares)))
    return graph


def test_split__cumulative_rounding__parts_sum_to_amount():
    assert split(10, [3333, 3333, 3333]) == ([3, 3, 3], 1)
    assert split(1, [5000, 5000]) == ([0, 1], 0)
    assert split(0, [1000]) == ([0], 0)
    assert split(7, []) == ([], 7)


def test_split__bad_shares__raise():
    with pytest.raises(RoyaltyError):
        split(1, [6000, 5000])
    with pytest.raises(RoyaltyError):
        split(-1, [])


@given(st.integers(0, 2**128 - 1), st.lists(st.integers(0, 2000), max_size=8).filter(lambda s: sum(s) <= BPS))
def test_split__any_amount__exact_and_each_part_within_one_wei(amount, shares):
    parts, owner = split(amount, shares)
    assert sum(parts) + owner == amount and owner >= 0 and all(p >= 0 for p in parts)
    for p, s in zip(parts, shares):
        assert abs(Fraction(amount * s, BPS) - p) < 1


def test_breakdown__two_hops__matches_hand_computation():
    graph = {1: ("0xa", []), 2: ("0xb", [(1, 3000)]), 3: ("0xc", [(2, 1000), (1, 500)])}
    b = breakdown(graph, 3, 10_000)
    assert b.by_capsule == {3: 8_500, 2: 700, 1: 800}
    assert b.by_owner == {"0xc": 8_500, "0xb": 700, "0xa": 800}
    # capsule 1 has no parents: its parts (500 from 3, 300 from 2) go straight to its claimable
    assert [h.capsule_id for h in b.hops] == [3, 2]
    assert b.hops[0].to_parents == {2: 1_000, 1: 500} and b.hops[1].to_parents == {1: 300}
    paths = {p.path: p.amount for p in b.paths}
    assert paths[(3,)] == 8_500 and paths[(3, 2)] == 700
    assert paths[(3, 1)] == 500 and paths[(3, 2, 1)] == 300


def test_breakdown__merged_vault_rounds_once_not_per_path():
    # 3 pays 1 wei to each of 1 and 2's paths; per-path rounding would lose wei, merged does not.
    graph = {1: ("0xa", []), 2: ("0xb", [(1, 5000)]), 3: ("0xc", [(2, 5000), (1, 5000)])}
    b = breakdown(graph, 3, 3)
    # hop 3: cum 5000 -> 1; cum 10000 -> 3 (2 more); owner 0. hop 2: 1 -> parent floor(0.5)=0, own 1.
    assert b.by_capsule == {3: 0, 2: 1, 1: 2}


def test_breakdown__unknown_capsule__raises_with_hint():
    with pytest.raises(RoyaltyError, match="load_graph_from_chain"):
        breakdown({1: ("0xa", [(9, 100)])}, 1, 10)


@given(dags(), st.integers(0, 10**30))
def test_breakdown__random_dag__conserves_every_wei(graph, amount):
    start = max(graph)
    b = breakdown(graph, start, amount)
    assert b.total == amount
    assert sum(h.to_owner + sum(h.to_parents.values()) for h in b.hops) == sum(h.amount for h in b.hops)
    # per-path exact shares sum to the whole payment
    assert sum(p.amount for p in b.paths) == amount


@given(dags(), st.data())
def test_plan__random_dag__children_before_parents_and_batches(graph, data):
    credited = data.draw(st.lists(st.sampled_from(sorted(graph)), min_size=1, max_size=5))
    size = data.draw(st.integers(1, 7))
    batches = plan(graph, credited, size)
    flat = [c for b in batches for c in b]
    assert all(1 <= len(b) <= size for b in batches)
    assert len(flat) == len(set(flat))
    pos = {c: i for i, c in enumerate(flat)}
    for c in flat:
        for p, s in graph[c][1]:
            if s and (graph[p][1] or p in credited):
                assert p in pos and pos[c] < pos[p]
            elif s:  # a root reached only as a parent: paid straight to its claimable, no batch
                assert p not in pos and is_root(graph, p)
    assert set(credited) <= set(flat)


@given(dags(max_nodes=15), st.integers(1, 10**24))
def test_breakdown__independent_of_tie_breaking(graph, amount):
    """Any children-first order gives the same integers (each vault propagated once)."""
    start = max(graph)
    b = breakdown(graph, start, amount)
    # another valid children-first order: Kahn's algorithm with ascending tie-break
    reach = set(settlement_order(graph, [start]))
    edges = {c: [p for p, s in graph[c][1] if s] for c in reach}
    indeg = {c: 0 for c in reach}
    for c in reach:
        for p in edges[c]:
            indeg[p] += 1
    ready = sorted(c for c in reach if indeg[c] == 0)
    order = []
    while ready:
        c = ready.pop(0)
        order.append(c)
        for p in edges[c]:
            indeg[p] -= 1
            if indeg[p] == 0:
                ready = sorted(ready + [p])
    assert len(order) == len(reach)
    vaults = {start: amount}
    got: dict[int, int] = {}
    for c in order:
        v = vaults.pop(c, 0)
        if not v:
            continue
        parts, own = split(v, [s for _, s in graph[c][1]])
        for (p, _), part in zip(graph[c][1], parts):
            vaults[p] = vaults.get(p, 0) + part
        got[c] = got.get(c, 0) + own
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in b.by_capsule.items() if v}


def test_plan__cycle__raises():
    with pytest.raises(RoyaltyError, match="cycle"):
        plan({1: ("0xa", [(2, 100)]), 2: ("0xb", [(1, 100)])}, [1], 10)


def test_plan__bad_batch_size__raises():
    with pytest.raises(RoyaltyError):
        plan({1: ("0xa", [])}, [1], 0)
    with pytest.raises(RoyaltyError):
        plan({1: ("0xa", [])}, [1], 129)


def test_plan__zero_share_edges__not_followed():
    graph = {1: ("0xa", []), 2: ("0xb", [(1, 0)])}
    assert plan(graph, [2], 10) == [[2]]


def test_cli__royalty_group__lists_commands():
    result = CliRunner().invoke(royalty_group, ["--help"])
    assert result.exit_code == 0
    assert "breakdown" in result.output and "settle" in result.output
