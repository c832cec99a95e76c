"""Generated parts of the language reference (docs/ldl.md), so the docs cannot drift from the
tables they describe: `python -m codexfield.ldl.reference` prints the scope table."""

from __future__ import annotations

from codexfield import scopes

from .compiler import REQUIREMENT_ALIASES

_WHERE = {"right": "`allow` / `deny`", "scenario": "`allow` / `deny`", "requirement": "`require`"}


def scope_table_markdown() -> str:
    """The scope table of codexfield/scopes.py as a Markdown table."""
    aliases = {v: k for k, v in REQUIREMENT_ALIASES.items()}
    rows = ["| name | bit | mask | group | clause | meaning |", "|---|---|---|---|---|---|"]
    for s in scopes.SCOPES:
        name = f"`{s.name}`" + (f" (or `{aliases[s.name]}`)" if s.name in aliases else "")
        rows.append(f"| {name} | {s.bit} | `{hex(s.mask)}` | {s.group} | {_WHERE[s.group]} | {s.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(scope_table_markdown(), end="")
