"""List what a contract's external surface has that its interfaces/I<Name>.vyi lacks.

    python tools/interface_gaps.py [--emit] [Contract ...]

Compares `vyper -f abi` of contracts/<Name>.vy with `vyper -f abi` of interfaces/I<Name>.vyi
(functions by selector, events by topic). With --emit, prints the missing declarations in
.vyi syntax (functions from `vyper -f external_interface`, events copied from the source
that declares them) so they can be pasted into the interface. tests/integrators/
test_interfaces_cover.py fails while any gap remains.
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

CONTRACTS = SYSTEM  # codexfield.contracts: the one list of the system's contracts


def _vyper(fmt: str, path: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "vyper", "-f", fmt, "-p", str(ROOT), str(path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def abi(path: Path) -> list[dict]:
    return json.loads(_vyper("abi", path))


def canonical(t: dict) -> str:
    if t["type"].startswith("tuple"):
        return "(" + ",".join(canonical(c) for c in t["components"]) + ")" + t["type"][5:]
    return t["type"]


def signature(entry: dict) -> str:
    return f"{entry['name']}({','.join(canonical(i) for i in entry.get('inputs', []))})"


def keyed(entries: list[dict]) -> dict[tuple[str, str], dict]:
    return {(e["type"], signature(e)): e for e in entries if e["type"] in ("function", "event")}


def gaps(name: str) -> list[dict]:
    have = keyed(abi(ROOT / "interfaces" / f"I{name}.vyi"))
    want = keyed(abi(ROOT / "contracts" / f"{name}.vy"))
    return [e for k, e in want.items() if k not in have]


def _event_sources() -> list[Path]:
    import snekmate
    import vyper

    roots = [
        ROOT / "contracts",
        ROOT / "interfaces",
        Path(snekmate.__path__[0]),
        Path(vyper.__file__).parent / "builtins",
    ]
    return [p for r in roots for p in r.rglob("*.vy*")]


def event_decl(event: dict) -> str:
    """The first source declaration of `event` whose fields and indexed flags match the ABI
    (ERC-20 and ERC-721 both declare `Transfer`; only the indexed flags tell them apart)."""
    name = event["name"]
    want = [(i["name"].lstrip("_"), bool(i.get("indexed"))) for i in event["inputs"]]
    pat = re.compile(rf"^event {name}:\n((?:[ \t]+.*\n)+)", re.M)
    for p in _event_sources():
        for m in pat.finditer(p.read_text()):
            fields = re.findall(r"^[ \t]+(\w+): (.*)$", m.group(1), re.M)
            if [(n.lstrip("_"), "indexed(" in ty) for n, ty in fields] == want:
                return f"event {name}:\n{m.group(1)}"
    return f"# event {name}: declaration not found\n"


def function_decls(name: str) -> dict[str, str]:
    out = {}
    for line in _vyper("external_interface", ROOT / "contracts" / f"{name}.vy").splitlines():
        m = re.match(r"\s+def (\w+)\((.*)\)( -> .*)?: (\w+)$", line)
        if m:
            fn, args, ret, mut = m.groups()
            deco = "@external\n" + ("" if mut == "nonpayable" else f"@{mut}\n")
            out.setdefault(fn, [])
            out[fn].append(f"{deco}def {fn}({args}){ret or ''}:\n    ...\n")
    return out


def main(argv: list[str]) -> int:
    emit = "--emit" in argv
    names = [a for a in argv if not a.startswith("--")] or CONTRACTS
    missing_any = False
    for name in names:
        g = gaps(name)
        if not g:
            continue
        missing_any = True
        print(f"# ---- I{name}.vyi lacks {len(g)} entries")
        fns = function_decls(name) if emit else {}
        for e in g:
            if not emit:
                print(f"#   {e['type']} {signature(e)}")
            elif e["type"] == "event":
                print("\n\n" + event_decl(e).rstrip("\n"))
            else:
                for decl in fns.get(e["name"], [f"# def {signature(e)}: not found\n"]):
                    print("\n\n" + decl.rstrip("\n"))
    return 1 if missing_any else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
