"""Run natrix (Vyper static analysis) on the deployables; fail on any finding not accepted in
docs/STATIC_ANALYSIS.md.

    python tools/natrix_check.py             # `make lint` runs this
    python tools/natrix_check.py --list      # every finding with its key, accepted or not

A finding's key is (rule code, file, subject): the subject is the names the message quotes,
joined by '.', e.g. `ingest` (NTX1), `_before_transfer.from_` (NTX10); line numbers are not
part of it, so edits elsewhere in a file keep the list valid. An accepted row may use `*` in
the subject (fnmatch). Rows no finding matches any more are printed as stale (not an error:
another change may have fixed them; delete the row).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "STATIC_ANALYSIS.md"
DEPLOYABLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "contracts").glob("*.vy"))
# snake_case arguments (constructor ones end in `_`, snekmate's convention); natrix's default is `^_`
RULE_CONFIG = ["ArgNamingConvention.pattern=^[a-z][a-z0-9_]*$"]
ROW = re.compile(r"^\|\s*(NTX\d+)\s*\|\s*`?([^|`]+?)`?\s*\|\s*`?([^|`]+?)`?\s*\|")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOT_SUBJECTS = {"view", "pure", "nonpayable", "payable"}


def subject(message: str) -> str:
    names = [n for n in re.findall(r"'([^']+)'", message) if NAME.match(n) and n not in NOT_SUBJECTS]
    return ".".join(names)


def findings() -> list[tuple[str, str, str, str]]:
    exe = shutil.which("natrix") or str(Path(sys.executable).parent / "natrix")
    args = [exe, "lint", "--json"]
    for rc in RULE_CONFIG:
        args += ["-c", rc]
    proc = subprocess.run(args + DEPLOYABLES, cwd=ROOT, capture_output=True, text=True)
    try:
        issues = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        detail = proc.stderr.strip() or proc.stdout.strip()
        raise SystemExit(f"natrix failed (exit {proc.returncode}): {detail}") from None
    return [
        (i["code"], i["file"], subject(i["message"]), f"{i['file']}:{i['position']}: {i['code']} {i['message']}")
        for i in issues
    ]


def accepted() -> list[tuple[str, str, str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m.group(1), m.group(2).strip(), m.group(3).strip()))
    return rows


def main(argv: list[str]) -> int:
    rows = accepted()
    found = findings()
    used: set[tuple[str, str, str]] = set()
    new = []
    for code, file, subj, text in found:
        match = next((r for r in rows if r[0] == code and r[1] == file and fnmatch.fnmatchcase(subj, r[2])), None)
        if match:
            used.add(match)
        else:
            new.append(text + f"   [key: | {code} | {file} | {subj} |]")
        if "--list" in argv:
            print(("accepted  " if match else "NEW       ") + text)
    for r in rows:
        if r not in used:
            print(f"stale row in {DOC.relative_to(ROOT)} (no such finding now): | {r[0]} | {r[1]} | {r[2]} |")
    if new:
        print(f"natrix: {len(new)} finding(s) not accepted in {DOC.relative_to(ROOT)} (fix, or add a row saying why):")
        print("\n".join(new))
        return 1
    print(f"natrix: {len(found)} finding(s) on {len(DEPLOYABLES)} deployables, all accepted in {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
