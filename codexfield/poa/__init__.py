"""Proof of Access off-chain: the score formula, an epoch simulator, routing and plots.

    formula.py    the score of DESIGN §4 bit-exact with AccessStaking (WAD fixed point), `Params`
    simulator.py  whole epochs replayed in Python (strikes, jails, slashing, rewards)
    routing.py    `NodeInfo`, `read_nodes(staking)`, `rank_nodes(...)` for consumers and gateways
    plots.py      a PNG of a simulation run (matplotlib, imported only when a plot is drawn)

The `codexfield poa` commands live in codexfield/cli/poa.py. Every name is re-exported here,
so `from codexfield import poa; poa.score(...)` keeps working.
"""

from __future__ import annotations

from codexfield.poa.formula import (
    BPS,
    DEFAULT_EPOCH_LENGTH,
    DEFAULT_PARAMS,
    MAX_COMMITTEE,
    RPW_SCALE,
    WAD,
    Params,
    Status,
    availability,
    counts,
    latency_score,
    median,
    quality_from,
    score,
    score_reports,
    usage_success,
    weight,
)
from codexfield.poa.plots import CLASS_COLORS, plot_simulation
from codexfield.poa.routing import (
    SERVICE_BITS,
    NodeInfo,
    parse_services,
    rank_nodes,
    read_nodes,
    region_bytes,
    region_text,
    routing_score,
)
from codexfield.poa.simulator import (
    NODE_CLASSES,
    EpochResult,
    SimNode,
    Simulator,
    class_summary,
    mixed_population,
    summary_lines,
)

__all__ = [
    "BPS",
    "CLASS_COLORS",
    "DEFAULT_EPOCH_LENGTH",
    "DEFAULT_PARAMS",
    "MAX_COMMITTEE",
    "NODE_CLASSES",
    "RPW_SCALE",
    "SERVICE_BITS",
    "WAD",
    "EpochResult",
    "NodeInfo",
    "Params",
    "SimNode",
    "Simulator",
    "Status",
    "availability",
    "class_summary",
    "counts",
    "latency_score",
    "median",
    "mixed_population",
    "parse_services",
    "plot_simulation",
    "quality_from",
    "rank_nodes",
    "read_nodes",
    "region_bytes",
    "region_text",
    "routing_score",
    "score",
    "score_reports",
    "summary_lines",
    "usage_success",
    "weight",
]
