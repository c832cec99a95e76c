"""Gas rows written by the gas tests; `python -m codexfield.gas_table` renders them into the README."""

from __future__ import annotations

import json
from pathlib import Path

GAS_DIR = Path(__file__).resolve().parents[2] / ".gas"


def record(area: str, operation: str, gas: int, target: str | None) -> None:
    """Merge one row into `.gas/<area>.json`."""
    GAS_DIR.mkdir(exist_ok=True)
    path = GAS_DIR / f"{area}.json"
    rows = json.loads(path.read_text()) if path.exists() else {}
    rows[operation] = {"gas": int(gas), "target": target}
    path.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
