"""The royalty graph off chain: exact payouts and settlement plans (CLI: codexfield/cli/royalty.py).

The RoyaltyRouter moves revenue one hop per `propagate`: a capsule's vault goes to its
parents' vaults (their shares, cumulative rounding) and the rest to the capsule's
claimable balance; a parent that has no parents of its own (a root) gets its part straight
into its claimable, since its own hop could only pay its owner. This module computes the
same integers off chain:

- `split(amount, shares)`: one hop, bit-for-bit the contract's arithmetic;
- `breakdown(graph, capsule_id, amount)`: the full payout of a payment through the DAG,
  propagating leaves to roots with each vault propagated once with its merged total, which
  is what the chain does when `plan`'s order is used;
- `plan(graph, credited, batch_size)`: the order and batches for `propagate_many`;
- `load_graph_from_chain(registry, ids)`: the graph (owners, parents) from the registry.

A graph maps capsule id -> (owner, [(parent id, share bps), ...]) with parents in the
registry's order (the order matters for the rounding).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

BPS = 10_000
MAX_PARENTS = 8
MAX_BATCH = 128  # bound of propagate_many's DynArray

Graph = Mapping[int, tuple[str, Sequence[tuple[int, int]]]]


class RoyaltyError(ValueError):
    """The graph or the request is inconsistent (unknown capsule, cycle, bad shares)."""


def split(amount: int, shares: Sequence[int]) -> tuple[list[int], int]:
    """One hop with cumulative rounding: (each parent's part, the owner's part).

    Parent i gets floor(amount * cum_i / 10000) - floor(amount * cum_(i-1) / 10000), where
    cum_i is the sum of the first i shares; the owner gets the rest, so the parts always
    sum to `amount`. This is RoyaltyRouter._split, and what an indexer needs to rebuild the
    parents' balances from a RoyaltyPropagated event (a root parent's part lands in its
    claimable, any other parent's in its vault: `is_root`).
    """
    if amount < 0:
        raise RoyaltyError(f"amount must be >= 0, got {amount}")
    if any(s < 0 for s in shares) or sum(shares) > BPS:
        raise RoyaltyError(f"shares must be >= 0 and sum to at most {BPS} bps, got {list(shares)}")
    parts: list[int] = []
    cum = 0
    given = 0
    for s in shares:
        cum += s
        due = amount * cum // BPS - given
        given += due
        parts.append(due)
    return parts, amount - given


@dataclass(frozen=True)
class Hop:
    """One `propagate` of `capsule_id` with `amount` in its vault."""

    capsule_id: int
    amount: int
    to_parents: dict[int, int]
    to_owner: int


@dataclass(frozen=True)
class PathShare:
    """The exact (unrounded) part of the payment that reaches the owner of `path[-1]` along `path`.

    `fraction` is the product of the edge shares times the last capsule's own part; rounding
    happens per vault, not per path, so the integers in `Breakdown.by_capsule` may differ from
    the sum of these amounts by less than one wei per hop.
    """

    path: tuple[int, ...]
    fraction: Fraction
    amount: Fraction


@dataclass
class Breakdown:
    """Where a payment of `amount` to `capsule_id` ends up once fully propagated."""

    capsule_id: int
    amount: int
    by_capsule: dict[int, int] = field(default_factory=dict)  # claimable added per capsule
    by_owner: dict[str, int] = field(default_factory=dict)  # the same, summed per owner
    hops: list[Hop] = field(default_factory=list)  # in propagation order
    paths: list[PathShare] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_capsule.values())


def _parents(graph: Graph, capsule_id: int) -> Sequence[tuple[int, int]]:
    try:
        return graph[capsule_id][1]
    except KeyError:
        raise RoyaltyError(
            f"capsule {capsule_id} is not in the graph; load it with load_graph_from_chain first"
        ) from None


def is_root(graph: Graph, capsule_id: int) -> bool:
    """True when the capsule has no parents: a hop of one of its children pays its part straight
    into its claimable (RoyaltyRouter's lineage snapshot records this once per parent), so it
    never needs a hop of its own for what its children send it."""
    return len(_parents(graph, capsule_id)) == 0


def claimables(graph: Graph, hops: Iterable[Hop]) -> dict[int, int]:
    """The claimable balance that `hops` add per capsule: each hop's owner part, plus every part
    paid to a root parent (see `is_root`)."""
    out: dict[int, int] = {}
    for h in hops:
        out[h.capsule_id] = out.get(h.capsule_id, 0) + h.to_owner
        for p, part in h.to_parents.items():
            if is_root(graph, p):
                out[p] = out.get(p, 0) + part
    return out


def _edges(graph: Graph, capsule_id: int) -> list[int]:
    """Parents that can receive money (share > 0), deduplicated in order."""
    return list(dict.fromkeys(p for p, s in _parents(graph, capsule_id) if s > 0))


def settlement_order(graph: Graph, sources: Iterable[int]) -> list[int]:
    """Children before parents over the sub-DAG reachable from `sources` (Kahn's algorithm).

    Ties are broken by descending capsule id (children have larger ids than their parents in
    the registry), which keeps the output deterministic.
    """
    sources = list(dict.fromkeys(int(s) for s in sources))
    reach: set[int] = set()
    todo = deque(sources)
    while todo:
        c = todo.popleft()
        if c in reach:
            continue
        reach.add(c)
        todo.extend(_edges(graph, c))
    indegree = {c: 0 for c in reach}  # number of children inside the sub-DAG
    for c in reach:
        for p in _edges(graph, c):
            indegree[p] += 1
    ready = [-c for c in reach if indegree[c] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        c = -heapq.heappop(ready)
        order.append(c)
        for p in _edges(graph, c):
            indegree[p] -= 1
            if indegree[p] == 0:
                heapq.heappush(ready, -p)
    if len(order) != len(reach):
        stuck = sorted(c for c in reach if indegree[c] > 0)
        raise RoyaltyError(f"the lineage has a cycle through capsules {stuck[:10]}; a registry graph never does")
    return order


def settle(graph: Graph, vaults: Mapping[int, int]) -> list[Hop]:
    """Propagate every non-zero vault in `vaults` to the roots, children first, each vault once.

    Returns the hops in order (what `plan` + `propagate_many` do on chain, and so what the
    RoyaltyPropagated events will say). A part paid to a root parent lands in its claimable
    and starts no hop; `claimables(graph, hops)` is the claimable added per capsule.
    """
    pending = {int(c): int(v) for c, v in vaults.items() if v}
    if any(v < 0 for v in pending.values()):
        raise RoyaltyError("vault amounts must be >= 0")
    hops: list[Hop] = []
    for c in settlement_order(graph, sorted(pending)):
        v = pending.pop(c, 0)
        if v == 0:
            continue
        parents = _parents(graph, c)
        parts, to_owner = split(v, [s for _, s in parents])
        given: dict[int, int] = {}
        for (p, _), part in zip(parents, parts):
            if part:
                given[p] = given.get(p, 0) + part
                if not is_root(graph, p):
                    pending[p] = pending.get(p, 0) + part
        hops.append(Hop(capsule_id=c, amount=v, to_parents=given, to_owner=to_owner))
    assert not any(pending.values()), "every reachable vault was propagated"
    return hops


def breakdown(graph: Graph, capsule_id: int, amount: int) -> Breakdown:
    """The full payout of `amount` paid to `capsule_id`, to the wei, as settled on chain.

    Vaults propagate leaves to roots (children before parents), each once with the merged
    total it received, using the contract's cumulative rounding.
    """
    if amount < 0:
        raise RoyaltyError(f"amount must be >= 0, got {amount}")
    capsule_id = int(capsule_id)
    _parents(graph, capsule_id)
    out = Breakdown(capsule_id=capsule_id, amount=amount)
    out.hops = settle(graph, {capsule_id: amount})
    out.by_capsule = claimables(graph, out.hops)
    for c, v in out.by_capsule.items():
        owner = graph[c][0]
        out.by_owner[owner] = out.by_owner.get(owner, 0) + v
    assert out.total == amount, "conservation"
    out.paths = _paths(graph, capsule_id, amount)
    return out


def _paths(graph: Graph, capsule_id: int, amount: int, limit: int = 10_000) -> list[PathShare]:
    """Exact per-path shares (depth-first over all paths; at most `limit` paths)."""
    out: list[PathShare] = []
    stack: list[tuple[tuple[int, ...], Fraction]] = [((capsule_id,), Fraction(1))]
    while stack and len(out) < limit:
        path, frac = stack.pop()
        c = path[-1]
        parents = _parents(graph, c)
        own = Fraction(BPS - sum(s for _, s in parents), BPS)
        if own:
            out.append(PathShare(path=path, fraction=frac * own, amount=frac * own * amount))
        for p, s in reversed(parents):
            if s:
                stack.append((path + (p,), frac * Fraction(s, BPS)))
    return out


def plan(graph: Graph, credited_capsules: Iterable[int], batch_size: int = MAX_BATCH) -> list[list[int]]:
    """Batches for `propagate_many`: children before parents over everything reachable.

    Executed in order (batch after batch), every vault is propagated once, after all the
    capsules that pay into it, so the chain ends with the claimables of `breakdown`. A root
    reached only as a parent is left out: its children's hops pay it straight into its
    claimable (`is_root`), so its vault has nothing from them and its `propagate` would be a
    no-op (~2.1k gas each); a credited root stays, its own vault is propagated.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise RoyaltyError(f"batch_size must be between 1 and {MAX_BATCH}, got {batch_size}")
    credited = {int(c) for c in credited_capsules}
    order = [c for c in settlement_order(graph, credited) if c in credited or not is_root(graph, c)]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def load_graph_from_chain(registry: Any, ids: Iterable[int]) -> dict[int, tuple[str, list[tuple[int, int]]]]:
    """Owners and parents of `ids` and all their ancestors, via `registry.owner_and_parents`."""
    graph: dict[int, tuple[str, list[tuple[int, int]]]] = {}
    todo = deque(int(i) for i in ids)
    while todo:
        c = todo.popleft()
        if c in graph:
            continue
        owner, parents = registry.owner_and_parents(c)
        edges = [(int(p[0]), int(p[1])) for p in parents]
        graph[c] = (str(owner), edges)
        todo.extend(p for p, _ in edges if p not in graph)
    return graph
