"""Give every function stub of an interfaces/I<Name>.vyi the NatSpec of its implementation.

    python tools/interface_natspec.py [--check] Contract [Contract ...]

Integrators read the interfaces first, so each stub carries the docstring its implementation
has (one source: the implementation's docstring is copied, never rewritten by hand). The
implementation is searched in contracts/<Name>.vy, the CodexField modules it imports
(contracts/modules/*.vy) and snekmate's modules (for exported roles and pausing). Public
getters (storage, immutables, constants) have no docstring: their stub gets the `# @dev`
comment above the declaration as `@notice`, and a `@return`. Stubs that already have a
docstring are left alone. With --check, writes nothing and exits 1 if a stub lacks NatSpec.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sources(name: str) -> list[Path]:
    import snekmate

    snek = Path(list(snekmate.__path__)[0])
    return [
        ROOT / "contracts" / f"{name}.vy",
        *sorted((ROOT / "contracts" / "modules").glob("*.vy")),
        *sorted(snek.rglob("*.vy")),
    ]


def _docstring_of(def_name: str, texts: list[str]) -> str | None:
    pat = re.compile(rf"^def {re.escape(def_name)}\(.*?\).*?:\n(    \"\"\"\n.*?\n    \"\"\"\n)", re.S | re.M)
    for text in texts:
        for m in pat.finditer(text):
            # the signature must not swallow another def
            if "\ndef " not in m.group(0)[4:]:
                return m.group(1)
    return None


def _getter_comment(name: str, texts: list[str]) -> str | None:
    for text in texts:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if re.match(rf"^{re.escape(name)}: public\(", line):
                j = i - 1
                # skip sibling declarations of the same group (one comment over several lines)
                while j >= 0 and lines[j] and not lines[j].startswith("#"):
                    j -= 1
                comment: list[str] = []
                while j >= 0 and lines[j].startswith("#"):
                    comment.insert(0, lines[j].lstrip("#").strip())
                    j -= 1
                text_ = " ".join(comment).split(" @notice ")[0]
                return text_[len("@dev ") :] if text_.startswith("@dev ") else (text_ or None)
    return None


def _getter_doc(name: str, sig: str, comment: str) -> str:
    params = re.findall(r"(\w+): ([\w\[\], ]+?)(?=,|\))", sig.split("(", 1)[1])
    ret = re.search(r"->\s*([^:]+):\s*$", sig.replace("\n", " "))
    notice = textwrap.wrap(comment or f"The `{name}` getter.", 100 - 12)
    out = ['    """', f"    @notice {notice[0]}", *(f"            {line}" for line in notice[1:])]
    for p, t in params:
        out.append(f"    @param {p} The {t} key.")
    if ret:
        out.append(f"    @return {ret.group(1).strip()} The value of `{name}`.")
    out.append('    """')
    return "\n".join(out) + "\n"


STUB = re.compile(r"^(def (\w+)\((?:.|\n)*?\)(?:\s*->\s*[^\n]+?)?:\n)(    \.\.\.\n)", re.M)


def process(name: str, write: bool) -> list[str]:
    vyi = ROOT / "interfaces" / f"I{name}.vyi"
    texts = [p.read_text() for p in _sources(name) if p.exists()]
    text = vyi.read_text()
    missing: list[str] = []

    def fix(m: re.Match) -> str:
        sig, fn, body = m.group(1), m.group(2), m.group(3)
        doc = _docstring_of(fn, texts)
        if doc is None:
            comment = _getter_comment(fn, texts)
            if comment is None and not re.search(rf"^{fn}: public\(", "\n".join(texts), re.M):
                missing.append(fn)
                return m.group(0)
            doc = _getter_doc(fn, sig, comment or "")
        return sig + doc + body

    new = STUB.sub(fix, text)
    if write and new != text:
        vyi.write_text(new)
    if not write and new != text:
        missing.extend(sorted(set(m.group(2) for m in STUB.finditer(text))))
    return missing


def main(argv: list[str]) -> int:
    check = "--check" in argv
    names = [a for a in argv if not a.startswith("--")]
    bad = 0
    for n in names:
        missing = process(n, write=not check)
        if missing:
            bad = 1
            print(f"I{n}.vyi: no NatSpec for {', '.join(missing)}")
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
