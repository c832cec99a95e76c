"""Compile Solidity sources with the `solc` on PATH (the solcjs shim) in standard-JSON mode."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compile_standard(paths: list[Path], outputs: tuple[str, ...] = ("abi",)) -> dict:
    solc = shutil.which("solc")
    assert solc, "no `solc` on PATH: run `make setup` (links tools/solc-shim.sh as .tools/bin/solc)"
    sources = {str(p.relative_to(ROOT)): {"content": p.read_text()} for p in paths}
    request = {
        "language": "Solidity",
        "sources": sources,
        "settings": {"evmVersion": "cancun", "outputSelection": {"*": {"*": list(outputs)}}},
    }
    proc = subprocess.run(
        [solc, "--standard-json", "--base-path", str(ROOT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    out = json.loads(proc.stdout)
    errors = [e["formattedMessage"] for e in out.get("errors", []) if e["severity"] == "error"]
    assert not errors, "\n".join(errors)
    return out
