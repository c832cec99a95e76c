"""`codexfield poa ...`: the score formula, the ranked nodes of a deployment, a simulation.

The mechanism is codexfield/poa/ (formula, simulator, routing, plots); these commands only
parse options and print.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from codexfield.cli.options import network_option
from codexfield.poa import (
    DEFAULT_PARAMS,
    WAD,
    Simulator,
    Status,
    availability,
    counts,
    latency_score,
    median,
    mixed_population,
    parse_services,
    plot_simulation,
    rank_nodes,
    read_nodes,
    routing_score,
    score_reports,
    summary_lines,
    usage_success,
    weight,
)


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
@click.option(
    "--reliability",
    "prev",
    type=float,
    default=None,
    help="Previous reliability in [0, 1] (default: the initial reliability).",
)
@click.option(
    "--committee",
    type=int,
    default=None,
    help="Reporter committee size of the epoch (default: one member per report given).",
)
@click.option("--stake", type=float, default=None, help="Stake in tokens, to show the reward weight.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (WAD integers).")
def score_command(
    probes: tuple[int, ...],
    successes: tuple[int, ...],
    latency_ms: tuple[int, ...],
    mu: int,
    failed_mu: int,
    prev: float | None,
    committee: int | None,
    stake: float | None,
    as_json: bool,
) -> None:
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
        click.echo(
            f"note: on chain this epoch would not count (needs a strict committee majority and "
            f"at least quorum={p.quorum} reports)"
        )
    if stake is not None:
        click.echo(f"reward weight  {out['weight'] / WAD:.4f} tokens")


@poa_group.command("nodes")
@network_option()
@click.option("--services", default="", help="Required services, e.g. compute,tee.")
@click.option("--region", default=None, help="Preferred region (ranked +20%).")
@click.option("--max-price", type=int, default=None, help="Largest acceptable price per MU (token units).")
@click.option("--all", "show_all", is_flag=True, help="List every node, not only routable ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def nodes_command(
    network: str, services: str, region: str | None, max_price: int | None, show_all: bool, as_json: bool
) -> None:
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
    for i, (_score, n) in enumerate(rows, 1):
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
