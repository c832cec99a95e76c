"""Write codexfield/abi/contracts.json, the contract types the installed package carries.

    python tools/gen_contract_types.py          # `make abi` runs this after `ape compile`
    python tools/gen_contract_types.py --check  # exit 1 if the file is missing or stale

The input is ape's build output `.build/__local__.json`; the output keeps, for the system's
contracts and the test token, what an SDK needs to call and deploy them (ABI, bytecode, method
identifiers, NatSpec) and drops sources, ASTs and source maps. A plain `ERC20` type is added
from Vyper's built-in IERC20 + IERC20Detailed interfaces (codexfield.contracts.erc20_abi).
tests/integrators/test_install.py runs `--check`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codexfield import contracts  # noqa: E402

KEEP = (
    "contractName",
    "sourceId",
    "abi",
    "deploymentBytecode",
    "runtimeBytecode",
    "methodIdentifiers",
    "devdoc",
    "userdoc",
)


def generate(build: Path = contracts.BUILD) -> str:
    if not build.is_file():
        raise SystemExit(f"no {build}: run 'ape compile' first")
    types = json.loads(build.read_text())["contractTypes"]
    missing = [n for n in contracts.SYSTEM + contracts.EXTRA if n not in types]
    if missing:
        raise SystemExit(f"{build} lacks {missing}: run 'ape compile --force'")
    out = {n: {k: types[n][k] for k in KEEP if k in types[n]} for n in contracts.SYSTEM + contracts.EXTRA}
    out[contracts.ERC20] = {"contractName": contracts.ERC20, "abi": contracts.erc20_abi()}
    doc = {"manifest": "ethpm/3", "name": "codexfield", "contractTypes": out}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = generate()
    target = contracts.PACKAGE_DATA
    if "--check" in argv:
        if not target.is_file() or target.read_text() != text:
            print(f"{target.relative_to(ROOT)} is missing or stale: run 'make abi'", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target.relative_to(ROOT)} ({len(text) // 1024} KiB, {len(json.loads(text)['contractTypes'])} types)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
