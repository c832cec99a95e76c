"""The Proof of Access score formula, bit-exact with `contracts/AccessStaking.vy`.

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
`quorum`); the medians are taken over all of them. `Params` mirrors `IAccessStaking.Params`
(tests/offchain/test_struct_mirrors.py checks it against the compiled ABI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

WAD = 10**18
BPS = 10_000
RPW_SCALE = 10**36
MAX_COMMITTEE = 15  # AccessStaking.MAX_COMMITTEE: largest committee, so most reports per (epoch, node)


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
    def from_chain(cls, staking: Any) -> Params:
        """Read the parameters of a deployed AccessStaking (ape contract instance)."""
        p = staking.params()
        return cls(**{f.name: int(getattr(p, f.name)) for f in fields(cls)})


DEFAULT_EPOCH_LENGTH = 86_400
DEFAULT_PARAMS = Params()


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


def quality_from(
    avail: int, latency_ms: int, mu: int, failed_mu: int, prev: int, params: Params = DEFAULT_PARAMS
) -> tuple[int, int]:
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


def score(
    probes: int,
    successes: int,
    latency_ms: int,
    mu: int = 0,
    failed_mu: int = 0,
    prev_reliability: int = DEFAULT_PARAMS.initial_reliability,
    params: Params = DEFAULT_PARAMS,
) -> tuple[int, int]:
    """One report's (quality, new reliability): the contract's `score_reports` of one sample."""
    return quality_from(availability(probes, successes), latency_ms, mu, failed_mu, prev_reliability, params)


def score_reports(
    samples: Sequence[tuple[int, int, int]],
    mu: int = 0,
    failed_mu: int = 0,
    prev_reliability: int = DEFAULT_PARAMS.initial_reliability,
    params: Params = DEFAULT_PARAMS,
) -> tuple[int, int]:
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
