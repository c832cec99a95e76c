"""The Solidity mirrors interfaces/solidity/I<Name>.sol match the Vyper contracts' ABIs exactly:
the same function selectors with the same output types and mutability, the same event topics
with the same indexed flags, and every struct field type (tuples compare component by component)."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from codexfield.contracts import SYSTEM

from sol_helpers import ROOT, compile_standard

NAMES = SYSTEM  # codexfield.contracts: the one list of the system's contracts
SOL_DIR = ROOT / "interfaces" / "solidity"


def _canonical(t: dict) -> str:
    if t["type"].startswith("tuple"):
        return "(" + ",".join(_canonical(c) for c in t["components"]) + ")" + t["type"][5:]
    return t["type"]


def surface(abi: list[dict]) -> dict[str, tuple]:
    """selector / topic (hex) -> (kind, signature, details that must match)."""
    out = {}
    for e in abi:
        if e["type"] not in ("function", "event"):
            continue
        sig = f"{e['name']}({','.join(_canonical(i) for i in e.get('inputs', []))})"
        h = keccak(text=sig)
        if e["type"] == "function":
            outs = tuple(_canonical(o) for o in e.get("outputs", []))
            out["0x" + h[:4].hex()] = ("function", sig, outs, e["stateMutability"])
        else:
            flags = tuple(bool(i.get("indexed")) for i in e["inputs"])
            out["0x" + h.hex()] = ("event", sig, flags, bool(e.get("anonymous")))
    return out


@pytest.fixture(scope="module")
def solidity_abis() -> dict[str, list[dict]]:
    paths = sorted(SOL_DIR.glob("I*.sol"))
    out = compile_standard(paths)
    return {name: c["abi"] for src in out["contracts"].values() for name, c in src.items()}


def test_mirrors__one_interface_per_contract__with_spdx_and_pragma():
    for name in NAMES:
        text = (SOL_DIR / f"I{name}.sol").read_text()
        assert text.startswith("// SPDX-License-Identifier: AGPL-3.0-only\npragma solidity ^0.8.20;")
        assert f"interface I{name} {{" in text


@pytest.mark.parametrize("name", NAMES)
def test_mirror__selectors_topics_and_types__equal_the_vyper_abi(project, solidity_abis, name):
    vyper_abi = [
        a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in getattr(project, name).contract_type.abi
    ]
    want = surface(vyper_abi)
    have = surface(solidity_abis[f"I{name}"])
    missing = {k: v for k, v in want.items() if k not in have}
    extra = {k: v for k, v in have.items() if k not in want}
    differ = {k: (want[k], have[k]) for k in want.keys() & have.keys() if want[k] != have[k]}
    assert not missing, f"I{name}.sol lacks {sorted(v[1] for v in missing.values())} (tools/gen_solidity_interfaces.py)"
    assert not extra, f"I{name}.sol declares what {name}.vy lacks: {sorted(v[1] for v in extra.values())}"
    assert not differ, f"I{name}.sol disagrees with {name}.vy: {differ}"
