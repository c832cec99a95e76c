"""A picture of a simulation run (needs the `plots` extra: matplotlib)."""

from __future__ import annotations

from codexfield.poa.formula import WAD
from codexfield.poa.simulator import NODE_CLASSES, Simulator

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
    axes[1].stackplot(
        epochs, *[series[k] for k in kinds], colors=[CLASS_COLORS[k] for k in kinds], labels=kinds, alpha=0.85
    )
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
