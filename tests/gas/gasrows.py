"""Gas rows written by the gas tests; `python -m codexfield.gas_table` renders them into the README.

Rows live in `.gas/<area>.json` as {operation: {"gas": int, "target": str | None}}.

Anchor rows (another protocol's contract measured on the same anvil, see tests/gas/anchors/):
area "anchor", an operation name that says whose contract and what was measured, e.g.
`record_anchor("0xSplits v1 SplitMain: full cycle per recipient, K=2", gas, "how measured")`.
A CodexField target row names the anchor rows it is compared with in
`codexfield.gas_table.TARGETS` (the {measured row: anchor row} map of each entry), and the table prints each measured anchor
figure and the ratio beside it; a gas test asserts the ratio with `anchor_gas(operation)`.
"""

from __future__ import annotations

import json
from pathlib import Path

GAS_DIR = Path(__file__).resolve().parents[2] / ".gas"
ANCHOR = "anchor"


def record(area: str, operation: str, gas: int, target: str | None) -> None:
    """Merge one row into `.gas/<area>.json`."""
    GAS_DIR.mkdir(exist_ok=True)
    path = GAS_DIR / f"{area}.json"
    rows = json.loads(path.read_text()) if path.exists() else {}
    rows[operation] = {"gas": int(gas), "target": target}
    path.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")


def record_anchor(operation: str, gas: int, how: str) -> None:
    """Merge one measured anchor row into `.gas/anchor.json` (`how`: what the figure covers)."""
    record(ANCHOR, operation, gas, how)


def anchor_gas(operation: str) -> int | None:
    """A measured anchor row of this run (None if the anchor was not measured)."""
    path = GAS_DIR / f"{ANCHOR}.json"
    if not path.exists():
        return None
    row = json.loads(path.read_text()).get(operation)
    return None if row is None else int(row["gas"])
