"""Snapshot the compiled ABIs and runtime sizes of the deployables, and compare against one.

    python tools/abi_snapshot.py save /tmp/abi-before.json     # before a refactor (after `ape compile`)
    python tools/abi_snapshot.py check /tmp/abi-before.json    # after: exit 1 on any ABI change

Reads ape's manifest (.build/__local__.json). An ABI is compared as the set of its entries
(functions, events, errors, constructor with every input, output and mutability), so moving a
function into a module and exporting it is no change, while a renamed argument or a changed
event field is. Also prints each runtime bytecode size against the EIP-170 limit (24,576).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 24_576


def snapshot() -> dict:
    manifest = json.loads((ROOT / ".build" / "__local__.json").read_text())
    out = {}
    for name, ct in sorted(manifest["contractTypes"].items()):
        source = ct.get("sourceId") or ""
        if not source.startswith("contracts/") or source.startswith(("contracts/mocks/", "contracts/examples/")):
            continue
        runtime = (ct.get("runtimeBytecode") or {}).get("bytecode") or "0x"
        out[name] = {
            "abi": sorted(json.dumps(e, sort_keys=True) for e in ct["abi"]),
            "runtime_bytes": (len(runtime) - 2) // 2,
        }
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "check"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    now = snapshot()
    if argv[0] == "save":
        Path(argv[1]).write_text(json.dumps(now, indent=1) + "\n")
        print(f"saved {len(now)} contracts to {argv[1]}")
        return 0
    before = json.loads(Path(argv[1]).read_text())
    bad = 0
    for name in sorted(set(before) | set(now)):
        if name not in now or name not in before:
            print(f"{name}: {'removed' if name not in now else 'new'}")
            bad = 1
            continue
        b, a = set(before[name]["abi"]), set(now[name]["abi"])
        size = now[name]["runtime_bytes"]
        flag = "" if size <= LIMIT else "  OVER THE LIMIT"
        print(
            f"{name:20s} ABI {'identical' if a == b else 'CHANGED'} ({len(a)} entries); runtime "
            f"{before[name]['runtime_bytes']} -> {size} bytes of {LIMIT}{flag}"
        )
        for e in sorted(b - a):
            print(f"    - {e}")
        for e in sorted(a - b):
            print(f"    + {e}")
        bad |= int(a != b or size > LIMIT)
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
