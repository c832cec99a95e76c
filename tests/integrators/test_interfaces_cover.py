"""interfaces/I<Name>.vyi declares every function and event of contracts/<Name>.vy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("interface_gaps", ROOT / "tools" / "interface_gaps.py")
gaps_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gaps_tool)


@pytest.mark.parametrize("name", gaps_tool.CONTRACTS)
def test_interface__covers_the_whole_external_surface(project, name):
    contract_abi = [
        a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in getattr(project, name).contract_type.abi
    ]
    have = gaps_tool.keyed(gaps_tool.abi(ROOT / "interfaces" / f"I{name}.vyi"))
    missing = sorted(k[1] for k in gaps_tool.keyed(contract_abi) if k not in have)
    assert missing == [], f"I{name}.vyi lacks {missing}: run `python tools/interface_gaps.py --emit {name}`"
