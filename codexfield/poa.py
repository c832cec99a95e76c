"""Proof of Access off-chain: the score formula, an epoch simulator, routing and the CLI.

The formula is the one in the header of `contracts/AccessStaking.vy`, in the same integer
fixed point (WAD = 1e18, weights in basis points), so that Python and the contract agree to
the last wei (tests/offchain/test_poa.py and the hypothesis test against the contract's
`score`/`score_reports` views pin this):

    A  = median_i(successes_i * WAD // probes_i)
    Lm = median_i(latency_ms_i)                       (even count: floor mean of the middle two)
    L  = WAD - min(WAD, Lm * WAD // latency_max_ms)
    U  = (mu - min(failed_mu, mu)) * WAD // mu     (only if mu > 0; both >> 128 first if mu >= 2**128)
    q  = (wA*A + wL*L + wU*U) // (wA + wL + wU)   if mu > 0 else (wA*A + wL*L) // (wA + wL)
    r' = (alpha*q + (BPS - alpha)*r) // BPS
    weight = stake * r' // WAD * r' // WAD
    reward = weight * (pool * 1e36 // Σ weight) // 1e36

(mu, failed_mu) are the UsageMeter's `node_usage(node, epoch)` paid MU and failed paid MU: usage
success is weighed by paid MU, so free vouchers never count. A node's epoch counts when its
reports come from a strict majority of the epoch's reporter committee (and number at least
`quorum`); the medians are taken over all of them.

`Simulator` replays whole epochs (strikes, jails, capped slashing into the next pool or burnt,
ejection, carry-over of pools) with the same integer arithmetic; `rank_nodes` orders nodes for
routing.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Sequence

import click

WAD = 10**18
BPS = 10_000
RPW_SCALE = 10**36
MAX_COMMITTEE = 15  # AccessStaking.MAX_COMMITTEE: largest committee, so most reports per (epoch, node)

SERVICE_BITS: dict[str, int] = {"compute": 1, "storage": 2, "edge": 4, "tee": 8, "transfer": 16}


class Status:
    """Node status codes (IAccessStaking)."""

    NONE = 0
    ACTIVE = 1
    JAILED = 2
    EJECTED = 3

    NAMES = {0: "none", 1: "active", 2: "jailed", 3: "ejected"}


@dataclass(frozen=True)
class Params:
    """AccessStaking constructor parameters (`IAccessStaking.Params`) with their defaults.

    `min_stake` is in the stake token's smallest unit (default: 1,000 tokens of 18 decimals).
    """

    min_stake: int = 1_000 * 10**18
    report_window: int = 3_600  # seconds after an epoch's end during which reports are accepted
    thaw_period: int = 7 * 86_400  # seconds; must exceed epoch_length + report_window
    quorum: int = 3  # fewest reports for an epoch to count (besides a strict committee majority), 1..15
    latency_max_ms: int = 2_000  # latency at which the latency score reaches 0
    weight_availability_bps: int = 6_000
    weight_latency_bps: int = 2_000
    weight_usage_bps: int = 2_000
    alpha_bps: int = 2_000  # EMA weight of the new epoch
    initial_reliability: int = WAD // 2
    quality_floor: int = WAD // 2  # q below this is a strike
    strikes_to_jail: int = 3  # consecutive strikes that jail a node
    jail_epochs: int = 7
    max_jails: int = 3  # the max_jails-th jail ejects
    slash_bps: int = 500  # of stake + thawing stake, per jail
    slash_cap_bps: int = 1_000  # per-epoch slashing capacity, of all bonded + thawing stake

    def as_tuple(self) -> tuple[int, ...]:
        """The struct as the contract's constructor takes it (field order)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_chain(cls, staking: Any) -> "Params":
        """Read the parameters of a deployed AccessStaking (ape contract instance)."""
        p = staking.params()
        return cls(**{f.name: int(getattr(p, f.name)) for f in fields(cls)})


DEFAULT_EPOCH_LENGTH = 86_400
DEFAULT_PARAMS = Params()


# ---------------------------------------------------------------------------------------------
# The formula
# ---------------------------------------------------------------------------------------------


def median(values: Sequence[int]) -> int:
    """Median as the contract takes it: odd count the middle, even count the floor mean."""
    if not values:
        raise ValueError("median of no values")
    v = sorted(values)
    n = len(v)
    if n % 2 == 1:
        return v[n // 2]
    return (v[n // 2 - 1] + v[n // 2]) // 2


def availability(probes: int, successes: int) -> int:
    """successes / probes in WAD."""
    if probes <= 0:
        raise ValueError("probes must be positive")
    if not 0 <= successes <= probes:
        raise ValueError("successes must be between 0 and probes")
    return successes * WAD // probes


def latency_score(latency_ms: int, params: Params = DEFAULT_PARAMS) -> int:
    """WAD - min(WAD, latency * WAD // latency_max_ms)."""
    t = latency_ms * WAD // params.latency_max_ms
    return WAD - t if t < WAD else 0


def usage_success(mu: int, failed_mu: int) -> int | None:
    """(mu - failed_mu) / mu in WAD (paid MU weighs), or None when no paid MU was settled."""
    if mu <= 0:
        return None
    f = min(failed_mu, mu)
    if mu >= 2**128:  # as the contract: keeps mu * WAD inside uint256
        mu, f = mu >> 128, f >> 128
    return (mu - f) * WAD // mu


def quality_from(avail: int, latency_ms: int, mu: int, failed_mu: int, prev: int,
                 params: Params = DEFAULT_PARAMS) -> tuple[int, int]:
    """(quality, new reliability) from the medians, as `_quality` in the contract."""
    lat = latency_score(latency_ms, params)
    wa, wl, wu = params.weight_availability_bps, params.weight_latency_bps, params.weight_usage_bps
    u = usage_success(mu, failed_mu)
    if u is not None:
        q = (wa * avail + wl * lat + wu * u) // (wa + wl + wu)
    else:
        q = (wa * avail + wl * lat) // (wa + wl)
    r = (params.alpha_bps * q + (BPS - params.alpha_bps) * prev) // BPS
    return q, r


def score(probes: int, successes: int, latency_ms: int, mu: int = 0, failed_mu: int = 0,
          prev_reliability: int = DEFAULT_PARAMS.initial_reliability,
          params: Params = DEFAULT_PARAMS) -> tuple[int, int]:
    """One report's (quality, new reliability): the contract's `score_reports` of one sample."""
    return quality_from(availability(probes, successes), latency_ms, mu, failed_mu, prev_reliability, params)


def score_reports(samples: Sequence[tuple[int, int, int]], mu: int = 0, failed_mu: int = 0,
                  prev_reliability: int = DEFAULT_PARAMS.initial_reliability,
                  params: Params = DEFAULT_PARAMS) -> tuple[int, int]:
    """(quality, new reliability) from up to MAX_COMMITTEE (probes, successes, latency_ms) reports."""
    if not 0 < len(samples) <= MAX_COMMITTEE:
        raise ValueError(f"between 1 and {MAX_COMMITTEE} reports are needed")
    avail = median([availability(p, s) for p, s, _ in samples])
    lat = median([lat for _, _, lat in samples])
    return quality_from(avail, lat, mu, failed_mu, prev_reliability, params)


def counts(reports: int, committee: int, params: Params = DEFAULT_PARAMS) -> bool:
    """Whether an epoch with `reports` reports for a node counts: a strict majority of the
    epoch's committee, and at least `quorum`."""
    return reports >= params.quorum and 2 * reports > committee


def weight(stake: int, reliability: int) -> int:
    """Reward weight: stake * r // WAD * r // WAD."""
    return stake * reliability // WAD * reliability // WAD


# ---------------------------------------------------------------------------------------------
# Epoch simulator (the contract's finalize_epoch, in Python)
# ---------------------------------------------------------------------------------------------


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

    def __init__(self, nodes: Iterable[SimNode], params: Params = DEFAULT_PARAMS, *, reporters: int = 3,
                 probes: int = 24, seed: int = 0, usage: bool = True, same_token: bool = False) -> None:
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
    def step(self, pool: int, reports: dict[str, list[tuple[int, int, int]]] | None = None,
             usage: dict[str, tuple[int, int]] | None = None) -> EpochResult:
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


def mixed_population(n: int = 200, seed: int = 0, decimals: int = 18,
                     mix: dict[str, float] | None = None) -> list[SimNode]:
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
        out.append(SimNode(
            name=f"node{i:03d}",
            kind=kind,
            stake=rng.randint(1_000, 10_000) * 10**decimals,
            availability=c["availability"],
            latency_ms=c["latency_ms"],
            failure_rate=c["failure_rate"],
            calls=rng.randint(0, 200),
        ))
    return out


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------


@dataclass
class NodeInfo:
    """A node as routing sees it (from the chain or the indexer)."""

    address: str
    endpoint: str = ""
    services: int = 0
    region: str = ""
    status: int = Status.ACTIVE
    reliability: int = 0
    stake: int = 0
    price_per_mu: int = 0
    strikes: int = 0
    jailed_until: int = 0
    unbonding: int = 0
    active: bool = True

    def services_names(self) -> list[str]:
        return [k for k, bit in SERVICE_BITS.items() if self.services & bit]


def parse_services(text: str | Iterable[str] | int | None) -> int:
    """`"compute,tee"` -> 9; ints pass through."""
    if text is None or text == "":
        return 0
    if isinstance(text, int):
        return text
    parts = text.split(",") if isinstance(text, str) else list(text)
    bits = 0
    for part in parts:
        name = part.strip().lower()
        if not name:
            continue
        if name not in SERVICE_BITS:
            raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICE_BITS)}")
        bits |= SERVICE_BITS[name]
    return bits


def routing_score(n: NodeInfo, region: str | None = None, reference_price: int = 0,
                  region_bonus: float = 0.2) -> float:
    """Routing utility: r^2 (the reward weight's reliability term), +20% in the wanted region,
    divided by (1 + price / reference_price) when prices are known. 0 for inactive nodes."""
    if not n.active or n.status != Status.ACTIVE:
        return 0.0
    r = n.reliability / WAD
    u = r * r
    if region and n.region == region:
        u *= 1 + region_bonus
    if reference_price > 0:
        u /= 1 + n.price_per_mu / reference_price
    return u


def rank_nodes(nodes: Iterable[NodeInfo], services: int = 0, region: str | None = None,
               max_price: int | None = None) -> list[tuple[float, NodeInfo]]:
    """Active nodes offering every bit of `services`, priced at most `max_price`, best first.

    The reference price is the median advertised price of the candidates (0 = no price term);
    ties break on stake (higher first), then address.
    """
    cands = [n for n in nodes if n.active and n.status == Status.ACTIVE and (n.services & services) == services]
    if max_price is not None:
        cands = [n for n in cands if n.price_per_mu <= max_price]
    prices = [n.price_per_mu for n in cands if n.price_per_mu > 0]
    ref = median(prices) if prices else 0
    scored = [(routing_score(n, region, ref), n) for n in cands]
    scored.sort(key=lambda t: (-t[0], -t[1].stake, t[1].address))
    return scored


def region_bytes(region: str) -> bytes:
    """A region code as the contract's bytes8 (right-padded with zeros)."""
    raw = region.encode()
    if len(raw) > 8:
        raise ValueError(f"region {region!r} is longer than 8 bytes")
    return raw.ljust(8, b"\x00")


def region_text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        raw = bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
    return bytes(raw).rstrip(b"\x00").decode(errors="replace")


def read_nodes(staking: Any) -> list[NodeInfo]:
    """Every registered node of a deployed AccessStaking (ape contract instance)."""
    out = []
    for i in range(int(staking.node_count())):
        addr = staking.node_at(i)
        n = staking.node(addr)
        out.append(NodeInfo(
            address=str(addr),
            endpoint=staking.endpoint(addr),
            services=int(n.services),
            region=region_text(staking.region(addr)),
            status=int(n.status),
            reliability=int(n.reliability),
            stake=int(n.stake),
            unbonding=int(n.unbonding),
            strikes=int(n.strikes),
            jailed_until=int(n.jailed_until),
            price_per_mu=int(staking.price_per_mu(addr)),
            active=bool(staking.is_active(addr)),
        ))
    return out


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _fmt_wad(v: int) -> str:
    return f"{v / WAD:.4f}"


@click.group("poa")
def poa_group() -> None:
    """Proof of Access: score formula, node ranking, simulation."""


@poa_group.command("score")
@click.option("--probes", type=int, multiple=True, required=True, help="Probes per report (repeat per reporter).")
@click.option("--successes", type=int, multiple=True, required=True, help="Successful probes per report.")
@click.option("--latency", "latency_ms", type=int, multiple=True, required=True, help="Mean latency (ms) per report.")
@click.option("--mu", type=int, default=0, show_default=True, help="Paid MU settled in the epoch (UsageMeter).")
@click.option("--failed-mu", "failed_mu", type=int, default=0, show_default=True, help="MU of failed paid calls.")
@click.option("--reliability", "prev", type=float, default=None,
              help="Previous reliability in [0, 1] (default: the initial reliability).")
@click.option("--committee", type=int, default=None,
              help="Reporter committee size of the epoch (default: one member per report given).")
@click.option("--stake", type=float, default=None, help="Stake in tokens, to show the reward weight.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (WAD integers).")
def score_command(probes: tuple[int, ...], successes: tuple[int, ...], latency_ms: tuple[int, ...], mu: int,
                  failed_mu: int, prev: float | None, committee: int | None, stake: float | None,
                  as_json: bool) -> None:
    """Epoch quality and new reliability of a node, bit-exact with the contract (default params)."""
    if not (len(probes) == len(successes) == len(latency_ms)):
        raise click.UsageError("give --probes, --successes and --latency once per report (same count each)")
    try:
        prev_wad = DEFAULT_PARAMS.initial_reliability if prev is None else int(round(prev * WAD))
        if not 0 <= prev_wad <= WAD:
            raise ValueError("--reliability must be between 0 and 1")
        samples = list(zip(probes, successes, latency_ms))
        q, r = score_reports(samples, mu, failed_mu, prev_wad)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    p = DEFAULT_PARAMS
    out: dict[str, Any] = {
        "availability": median([availability(a, b) for a, b, _ in samples]),
        "latency_ms": median(list(latency_ms)),
        "latency_score": latency_score(median(list(latency_ms))),
        "usage_success": usage_success(mu, failed_mu),
        "quality": q,
        "reliability": r,
        "strike": q < p.quality_floor,
        "counts": counts(len(samples), len(samples) if committee is None else committee, p),
    }
    if stake is not None:
        out["weight"] = weight(int(stake * WAD), r)
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"availability   {_fmt_wad(out['availability'])}  (median of {len(samples)} reports)")
    click.echo(f"latency        {out['latency_ms']} ms -> score {_fmt_wad(out['latency_score'])}")
    u = out["usage_success"]
    click.echo(f"usage success  {'n/a (no paid MU)' if u is None else _fmt_wad(u)}")
    click.echo(f"quality        {_fmt_wad(q)}  ({q} wei){'  STRIKE' if out['strike'] else ''}")
    click.echo(f"reliability    {_fmt_wad(prev_wad)} -> {_fmt_wad(r)}  ({r} wei)")
    if not out["counts"]:
        click.echo(f"note: on chain this epoch would not count (needs a strict committee majority and "
                   f"at least quorum={p.quorum} reports)")
    if stake is not None:
        click.echo(f"reward weight  {out['weight'] / WAD:.4f} tokens")


@poa_group.command("nodes")
@click.option("--network", default="ethereum:local:foundry", show_default=True, help="ape network choice.")
@click.option("--services", default="", help="Required services, e.g. compute,tee.")
@click.option("--region", default=None, help="Preferred region (ranked +20%).")
@click.option("--max-price", type=int, default=None, help="Largest acceptable price per MU (token units).")
@click.option("--all", "show_all", is_flag=True, help="List every node, not only routable ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def nodes_command(network: str, services: str, region: str | None, max_price: int | None, show_all: bool,
                  as_json: bool) -> None:
    """Registered nodes of the deployed AccessStaking, ranked for routing."""
    from codexfield import deployments

    try:
        required = parse_services(services)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        with deployments.connected(network) as book:
            staking = deployments.contract("AccessStaking", book)
            nodes = read_nodes(staking)
    except deployments.AddressBookError as exc:
        raise click.ClickException(str(exc)) from None
    if show_all:
        rows = [(routing_score(n, region), n) for n in nodes]
    else:
        rows = rank_nodes(nodes, required, region, max_price)
    if as_json:
        click.echo(json.dumps([{**asdict(n), "score": s, "services_names": n.services_names()} for s, n in rows]))
        return
    if not rows:
        click.echo("no node matches; try --all to list every registered node")
        return
    click.echo(f"{'#':>3} {'node':42} {'status':8} {'rel':>6} {'stake':>12} {'price/MU':>10} {'region':8} services")
    for i, (s, n) in enumerate(rows, 1):
        click.echo(
            f"{i:>3} {n.address:42} {Status.NAMES.get(n.status, '?'):8} {n.reliability / WAD:6.3f} "
            f"{n.stake / WAD:12.2f} {n.price_per_mu:>10} {n.region:8} {','.join(n.services_names())}"
        )


@poa_group.command("simulate")
@click.option("--nodes", "n_nodes", type=int, default=200, show_default=True)
@click.option("--epochs", type=int, default=100, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--plot", "plot_path", default=None, help="Write a PNG of the run (needs matplotlib).")
def simulate_command(n_nodes: int, epochs: int, seed: int, plot_path: str | None) -> None:
    """Simulate a mixed node population (bit-exact formula) and summarise rewards per class."""
    sim = Simulator(mixed_population(n_nodes, seed), seed=seed)
    sim.run(epochs, 10_000 * WAD)
    for line in summary_lines(sim):
        click.echo(line)
    if plot_path:
        plot_simulation(sim, plot_path)
        click.echo(f"plot written to {plot_path}")


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
    lines = [f"{len(sim.nodes)} nodes, {sim.epoch} epochs, slashed {sum(n.slashed for n in sim.nodes) / WAD:,.0f} tokens "
             f"({'into the next pools' if sim.same_token else 'burnt'})"]
    lines.append(f"{'class':8} {'nodes':>5} {'ejected':>7} {'reward%':>8} {'stake%':>7} {'rel':>6} {'reward/token':>12}")
    for kind, s in class_summary(sim).items():
        lines.append(
            f"{kind:8} {int(s['nodes']):>5} {int(s['ejected']):>7} {100 * s['reward_share']:>7.1f}% "
            f"{100 * s['stake_share']:>6.1f}% {s['mean_reliability']:>6.3f} {s['reward_per_token']:>12.4f}"
        )
    return lines


CLASS_COLORS = {"good": "#2b8a3e", "average": "#1971c2", "flaky": "#f08c00", "bad": "#c92a2a"}


def plot_simulation(sim: Simulator, path: str) -> None:
    """Three panels: mean reliability per class, cumulative reward share per class, nodes
    still bonded per class (ejections)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = list(range(sim.epoch))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    kinds = [k for k in NODE_CLASSES if any(n.kind == k for n in sim.nodes)]
    by_kind = {k: [n for n in sim.nodes if n.kind == k] for k in kinds}
    for k in kinds:
        g = by_kind[k]
        rel = [sum(n.history[e] for n in g) / len(g) / WAD for e in epochs]
        axes[0].plot(epochs, rel, color=CLASS_COLORS[k], label=f"{k} ({len(g)})", lw=2)
    axes[0].axhline(sim.params.quality_floor / WAD, color="grey", ls="--", lw=1, label="quality floor")
    axes[0].set(title="Mean reliability (EMA of quality)", xlabel="epoch", ylabel="reliability", ylim=(0, 1.02))
    axes[0].legend(loc="lower left", fontsize=8)

    cum = {k: 0 for k in kinds}
    series: dict[str, list[float]] = {k: [] for k in kinds}
    names = {n.name: n.kind for n in sim.nodes}
    for res in sim.results:
        for name, amount in res.rewards.items():
            cum[names[name]] += amount
        tot = sum(cum.values()) or 1
        for k in kinds:
            series[k].append(100 * cum[k] / tot)
    axes[1].stackplot(epochs, *[series[k] for k in kinds], colors=[CLASS_COLORS[k] for k in kinds],
                      labels=kinds, alpha=0.85)
    axes[1].set(title="Cumulative share of rewards paid", xlabel="epoch", ylabel="% of rewards", ylim=(0, 100))
    axes[1].legend(loc="lower left", fontsize=8)

    ejected_at: dict[str, int] = {}
    for res in sim.results:
        for name in res.ejected:
            ejected_at[name] = res.epoch
    for k in kinds:
        g = by_kind[k]
        alive = [sum(1 for n in g if ejected_at.get(n.name, 10**9) > e) for e in epochs]
        axes[2].plot(epochs, alive, color=CLASS_COLORS[k], label=k, lw=2)
    axes[2].set(title="Nodes still bonded (not ejected)", xlabel="epoch", ylabel="nodes")
    axes[2].legend(loc="center right", fontsize=8)
    fig.suptitle(f"Proof of Access: {len(sim.nodes)} nodes over {sim.epoch} epochs (bit-exact contract formula)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
