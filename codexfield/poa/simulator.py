"""An epoch simulator: AccessStaking's `finalize_epoch` replayed in Python.

`Simulator` replays whole epochs (strikes, jails, capped slashing into the next pool or burnt,
ejection, carry-over of pools) with the integer arithmetic of codexfield/poa/formula.py;
`mixed_population` builds a population of nodes of mixed quality and `summary_lines` is what
`codexfield poa simulate` prints.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from codexfield.poa.formula import BPS, DEFAULT_PARAMS, RPW_SCALE, WAD, Params, Status, counts, score_reports, weight


@dataclass
class SimNode:
    """One node in the simulator; `availability`/`latency_ms`/`failure_rate` are its truth."""

    name: str
    stake: int
    availability: float = 0.99
    latency_ms: float = 200.0
    failure_rate: float = 0.01
    calls: int = 0  # paid calls per epoch (1 MU each: mu = calls, failed_mu = failed calls)
    kind: str = "good"
    reliability: int = 0
    strikes: int = 0
    jails: int = 0
    status: int = Status.ACTIVE
    jailed_until: int = 0
    thawing: int = 0
    rewards: int = 0
    slashed: int = 0
    history: list[int] = field(default_factory=list)  # reliability after each epoch


@dataclass
class EpochResult:
    epoch: int
    pool: int
    total_weight: int
    reward_per_weight: int
    carried: int
    rewards: dict[str, int]
    slashed: int
    jailed: list[str]
    ejected: list[str]
    quality: dict[str, int]


class Simulator:
    """Integer replay of AccessStaking's epochs: strikes, jails, slashing cap, ejection, rewards.

    Reports are produced by a committee of `reporters` honest reporters (binomial probes, noisy
    latency); a node whose reports are not a strict committee majority (or fewer than `quorum`)
    is skipped, as on chain. Slashed stake joins the next epoch's pool with `same_token`
    (stake token == reward token), else it is burnt (`burnt`).
    """

    def __init__(
        self,
        nodes: Iterable[SimNode],
        params: Params = DEFAULT_PARAMS,
        *,
        reporters: int = 3,
        probes: int = 24,
        seed: int = 0,
        usage: bool = True,
        same_token: bool = False,
    ) -> None:
        self.params = params
        self.nodes: list[SimNode] = list(nodes)
        for n in self.nodes:
            if n.reliability == 0:
                n.reliability = params.initial_reliability
        self.reporters = reporters
        self.probes = probes
        self.usage = usage
        self.rng = random.Random(seed)
        self.epoch = 0
        self.carry = 0
        self.same_token = same_token
        self.burnt = 0
        self.results: list[EpochResult] = []

    # -- observation ---------------------------------------------------------------------------
    def _reports(self, n: SimNode) -> list[tuple[int, int, int]]:
        out = []
        for _ in range(self.reporters):
            ok = sum(1 for _ in range(self.probes) if self.rng.random() < n.availability)
            lat = max(1, int(self.rng.gauss(n.latency_ms, n.latency_ms * 0.15)))
            out.append((self.probes, ok, lat))
        return out

    def _usage(self, n: SimNode) -> tuple[int, int]:
        if not self.usage or n.calls == 0:
            return 0, 0
        fails = sum(1 for _ in range(n.calls) if self.rng.random() < n.failure_rate)
        return n.calls, fails

    @property
    def total_staked(self) -> int:
        return sum(n.stake for n in self.nodes)

    @property
    def total_thawing(self) -> int:
        return sum(n.thawing for n in self.nodes)

    # -- one epoch -------------------------------------------------------------------------------
    def step(
        self,
        pool: int,
        reports: dict[str, list[tuple[int, int, int]]] | None = None,
        usage: dict[str, tuple[int, int]] | None = None,
    ) -> EpochResult:
        """Finalize one epoch funded with `pool` (plus any carry-over).

        `reports`/`usage` override the generated observations (node name -> samples / (mu,
        failed_mu)); nodes missing from an override get no reports / no usage.
        """
        p = self.params
        e = self.epoch
        pool_total = pool + self.carry
        slash_epoch_cap: int | None = None
        weights: dict[str, int] = {}
        qualities: dict[str, int] = {}
        jailed: list[str] = []
        ejected: list[str] = []
        slashed_sum = 0
        for n in self.nodes:
            if n.status == Status.EJECTED:
                continue
            samples = reports.get(n.name, []) if reports is not None else self._reports(n)
            if len(samples) > self.reporters:
                raise ValueError(f"{n.name}: more reports than committee members ({self.reporters})")
            if not counts(len(samples), self.reporters, p):
                continue
            mu, failed_mu = usage.get(n.name, (0, 0)) if usage is not None else self._usage(n)
            q, r = score_reports(samples, mu, failed_mu, n.reliability, p)
            qualities[n.name] = q
            n.reliability = r
            w = 0
            if n.status == Status.JAILED and e >= n.jailed_until:
                n.status = Status.ACTIVE
            if n.status == Status.ACTIVE:
                n.strikes = n.strikes + 1 if q < p.quality_floor else 0
                if n.strikes >= p.strikes_to_jail:
                    n.strikes = 0
                    n.jails += 1
                    n.jailed_until = e + 1 + p.jail_epochs
                    if slash_epoch_cap is None:
                        slash_epoch_cap = (self.total_staked + self.total_thawing) * p.slash_cap_bps // BPS
                    amount = min((n.stake + n.thawing) * p.slash_bps // BPS, slash_epoch_cap)
                    slash_epoch_cap -= amount
                    from_stake = min(amount, n.stake)
                    n.stake -= from_stake
                    n.thawing -= amount - from_stake
                    n.slashed += amount
                    slashed_sum += amount
                    jailed.append(n.name)
                    if n.jails >= p.max_jails:
                        n.status = Status.EJECTED
                        n.thawing += n.stake
                        n.stake = 0
                        ejected.append(n.name)
                    else:
                        n.status = Status.JAILED
                else:
                    w = weight(n.stake, r)
            if w:
                weights[n.name] = w
        for n in self.nodes:
            n.history.append(n.reliability)
        total_weight = sum(weights.values())
        rewards: dict[str, int] = {}
        if total_weight == 0:
            rpw, carried = 0, pool_total
            self.carry = pool_total
        else:
            rpw, carried = pool_total * RPW_SCALE // total_weight, 0
            self.carry = 0
            by_name = {n.name: n for n in self.nodes}
            for name, w in weights.items():
                amount = w * rpw // RPW_SCALE
                rewards[name] = amount
                by_name[name].rewards += amount
        if self.same_token:
            self.carry += slashed_sum  # the next epoch's pool
        else:
            self.burnt += slashed_sum
        res = EpochResult(e, pool_total, total_weight, rpw, carried, rewards, slashed_sum, jailed, ejected, qualities)
        self.results.append(res)
        self.epoch += 1
        return res

    def run(self, epochs: int, pool_per_epoch: int) -> list[EpochResult]:
        return [self.step(pool_per_epoch) for _ in range(epochs)]


NODE_CLASSES: dict[str, dict[str, float]] = {
    # availability, mean latency (ms), paid-call failure rate
    "good": {"availability": 0.995, "latency_ms": 150.0, "failure_rate": 0.005},
    "average": {"availability": 0.95, "latency_ms": 600.0, "failure_rate": 0.03},
    "flaky": {"availability": 0.75, "latency_ms": 1_200.0, "failure_rate": 0.15},
    "bad": {"availability": 0.35, "latency_ms": 1_900.0, "failure_rate": 0.5},
}


def mixed_population(
    n: int = 200, seed: int = 0, decimals: int = 18, mix: dict[str, float] | None = None
) -> list[SimNode]:
    """`n` nodes of mixed quality (default 40% good, 30% average, 15% flaky, 15% bad) with
    stakes of 1,000..10,000 tokens and 0..200 paid calls per epoch."""
    mix = mix or {"good": 0.40, "average": 0.30, "flaky": 0.15, "bad": 0.15}
    rng = random.Random(seed)
    kinds: list[str] = []
    for kind, share in mix.items():
        kinds += [kind] * round(n * share)
    kinds = (kinds + ["good"] * n)[:n]
    rng.shuffle(kinds)
    out = []
    for i, kind in enumerate(kinds):
        c = NODE_CLASSES[kind]
        out.append(
            SimNode(
                name=f"node{i:03d}",
                kind=kind,
                stake=rng.randint(1_000, 10_000) * 10**decimals,
                availability=c["availability"],
                latency_ms=c["latency_ms"],
                failure_rate=c["failure_rate"],
                calls=rng.randint(0, 200),
            )
        )
    return out


def class_summary(sim: Simulator) -> dict[str, dict[str, float]]:
    """Per quality class: nodes, ejected, reward share, mean reliability, rewards per staked token."""
    total = sum(n.rewards for n in sim.nodes) or 1
    out: dict[str, dict[str, float]] = {}
    for kind in NODE_CLASSES:
        group = [n for n in sim.nodes if n.kind == kind]
        if not group:
            continue
        stake0 = sum(n.stake + n.thawing + n.slashed for n in group)
        out[kind] = {
            "nodes": len(group),
            "ejected": sum(1 for n in group if n.status == Status.EJECTED),
            "jailed_now": sum(1 for n in group if n.status == Status.JAILED),
            "reward_share": sum(n.rewards for n in group) / total,
            "stake_share": stake0 / (sum(n.stake + n.thawing + n.slashed for n in sim.nodes) or 1),
            "mean_reliability": sum(n.reliability for n in group) / len(group) / WAD,
            "reward_per_token": sum(n.rewards for n in group) / (stake0 or 1),
            "slashed": sum(n.slashed for n in group) / WAD,
        }
    return out


def summary_lines(sim: Simulator) -> list[str]:
    lines = [
        f"{len(sim.nodes)} nodes, {sim.epoch} epochs, slashed {sum(n.slashed for n in sim.nodes) / WAD:,.0f} tokens "
        f"({'into the next pools' if sim.same_token else 'burnt'})"
    ]
    lines.append(
        f"{'class':8} {'nodes':>5} {'ejected':>7} {'reward%':>8} {'stake%':>7} {'rel':>6} {'reward/token':>12}"
    )
    for kind, s in class_summary(sim).items():
        lines.append(
            f"{kind:8} {int(s['nodes']):>5} {int(s['ejected']):>7} {100 * s['reward_share']:>7.1f}% "
            f"{100 * s['stake_share']:>6.1f}% {s['mean_reliability']:>6.3f} {s['reward_per_token']:>12.4f}"
        )
    return lines
