"""Proof of Access simulation: `ape run simulate_poa [--nodes 200] [--epochs 100] [--plot PATH]`.

Thin: the model (the contract's integer formula, strikes, jails, capped slashing, ejection and
pro-rata rewards) lives in `codexfield.poa`. No chain is needed.
"""

from __future__ import annotations

import click

from codexfield import poa


@click.command(cls=click.Command)
@click.option("--nodes", "n_nodes", type=int, default=200, show_default=True, help="Nodes in the population.")
@click.option("--epochs", type=int, default=100, show_default=True, help="Epochs to finalize.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option("--pool", type=int, default=10_000, show_default=True, help="Reward pool per epoch, in tokens.")
@click.option("--plot", "plot_path", default="docs/img/poa_simulation.png", show_default=True, help="PNG to write.")
def cli(n_nodes: int, epochs: int, seed: int, pool: int, plot_path: str) -> None:
    """Simulate a mixed-quality node population and plot who earns and who is ejected."""
    sim = poa.Simulator(poa.mixed_population(n_nodes, seed), seed=seed)
    sim.run(epochs, pool * poa.WAD)
    for line in poa.summary_lines(sim):
        click.echo(line)
    if plot_path:
        poa.plot_simulation(sim, plot_path)
        click.echo(f"plot written to {plot_path}")


if __name__ == "__main__":  # pragma: no cover
    cli()
