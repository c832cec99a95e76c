"""Write the Solidity mirrors interfaces/solidity/I<Name>.sol from interfaces/I<Name>.vyi.

    python tools/gen_solidity_interfaces.py [Name ...]

Each .vyi is compiled to its ABI with `vyper -f abi`; tuples get the struct names the .vyi
declares (matched by field names), so the mirror has every function, struct and event of the
contract. tests/integrators/test_solidity_abi.py compiles the mirrors with solc and checks
selectors, event topics and types against the contracts' own ABIs, so a stale mirror fails CI:
re-run this script after changing an interface. Function inputs Vyper cannot name (`value`)
get their standard names back (codexfield.did.VYPER_INPUT_RENAMES), so the IdentityRegistry
mirror's ABI is ERC-1056's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from codexfield.contracts import SYSTEM  # noqa: E402
from codexfield.did import VYPER_INPUT_RENAMES  # noqa: E402  (one home for the ERC-1056 names)

OUT = ROOT / "interfaces" / "solidity"
NAMES = SYSTEM  # codexfield.contracts: the one list of the system's contracts
# Solidity keywords and reserved words a Vyper identifier may collide with.
RESERVED = set(
    "after alias apply at auto byte layout transient case copyof days default define ether final finney gwei hours immutable implements "
    "in inline let macro match minutes mutable null of override partial promise reference relocatable sealed "
    "seconds sizeof static supports switch szabo typedef typeof unchecked var virtual weeks wei years from "
    "address bool string bytes mapping contract interface library event struct enum function modifier "
    "return returns public private internal external pure view payable constant storage memory calldata "
    "emit new delete this super type is as import pragma using assembly try catch revert error".split()
)


def vyi_abi(path: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "vyper", "-f", "abi", "-p", str(ROOT), str(path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def vyi_structs(text: str) -> dict[tuple[str, ...], str]:
    """Field-name tuple -> struct name, for every `struct X:` in the interface."""
    out = {}
    for m in re.finditer(r"^struct (\w+):\n((?:[ \t]+\w+: .*\n)+)", text, re.M):
        fields = tuple(re.findall(r"^[ \t]+(\w+):", m.group(2), re.M))
        out[fields] = m.group(1)
    return out


def notice(text: str) -> list[str]:
    m = re.search(r'"""(.*?)"""', text, re.S)
    if not m:
        return []
    body = m.group(1)
    n = re.search(r"@notice(.*?)(?=\n@|\Z)", body, re.S)
    lines = [ln.strip() for ln in (n.group(1) if n else "").strip().splitlines()]
    return lines


class Writer:
    def __init__(self, structs: dict[tuple[str, ...], str]):
        self.structs = structs
        self.used: dict[str, list[dict]] = {}

    def ident(self, name: str) -> str:
        return name + "_" if name in RESERVED else name

    def type_of(self, t: dict) -> str:
        if t["type"].startswith("tuple"):
            key = tuple(c["name"] for c in t["components"])
            if key not in self.structs:
                raise SystemExit(f"no struct in the .vyi has fields {key}")
            name = self.structs[key]
            self.used.setdefault(name, t["components"])
            for c in t["components"]:
                self.type_of(c)
            return name + t["type"][5:]
        return t["type"]

    def param(self, t: dict, location: str) -> str:
        ty = self.type_of(t)
        ref = ty in ("string", "bytes") or ty.endswith("]") or ty[0].isupper()
        name = VYPER_INPUT_RENAMES.get(t.get("name", ""), t.get("name", ""))
        parts = [ty] + ([location] if ref else []) + ([self.ident(name)] if name else [])
        return " ".join(parts)

    def function(self, f: dict) -> str:
        args = ", ".join(self.param(i, "calldata") for i in f["inputs"])
        mut = {"view": " view", "pure": " pure", "payable": " payable"}.get(f["stateMutability"], "")
        outs = ", ".join(self.param({**o, "name": ""}, "memory") for o in f.get("outputs", []))
        ret = f" returns ({outs})" if outs else ""
        return f"    function {f['name']}({args}) external{mut}{ret};"

    def event(self, e: dict) -> str:
        fields = []
        for i in e["inputs"]:
            ty = self.type_of(i)
            fields.append(f"{ty}{' indexed' if i.get('indexed') else ''} {self.ident(i['name'])}")
        return f"    event {e['name']}({', '.join(fields)});"

    def struct(self, name: str, comps: list[dict]) -> str:
        body = "\n".join(f"        {self.type_of(c)} {self.ident(c['name'])};" for c in comps)
        return f"    struct {name} {{\n{body}\n    }}"


def render(name: str) -> str:
    vyi = ROOT / "interfaces" / f"I{name}.vyi"
    text = vyi.read_text()
    abi = vyi_abi(vyi)
    w = Writer(vyi_structs(text))
    events = [w.event(e) for e in abi if e["type"] == "event"]
    functions = [w.function(f) for f in abi if f["type"] == "function"]
    # struct declarations in the order the .vyi declares them
    order = [m.group(1) for m in re.finditer(r"^struct (\w+):", text, re.M)]
    structs = [w.struct(s, w.used[s]) + "\n" for s in order if s in w.used]
    if structs:
        structs[-1] = structs[-1].rstrip("\n")
    head = [
        "// SPDX-License-Identifier: AGPL-3.0-only",
        "pragma solidity ^0.8.20;",
        "",
        "/// @title I" + name,
        "/// @author CodexField",
        f"/// @notice Solidity mirror of interfaces/I{name}.vyi: every function, struct and event of",
        f"///         contracts/{name}.vy. Generated by tools/gen_solidity_interfaces.py; selectors,",
        "///         topics and types are checked against the Vyper ABI by tests/integrators/test_solidity_abi.py.",
    ]
    head += ["/// " + ln if ln else "///" for ln in notice(text)]
    body = ["interface I" + name + " {"]
    for block in (structs, events, functions):
        if block:
            body += block + [""] if block is not functions else block
    body.append("}")
    if body[-2] == "":
        body.pop(-2)
    return "\n".join(head + body) + "\n"


def main(argv: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in argv or NAMES:
        path = OUT / f"I{name}.sol"
        path.write_text(render(name))
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
