"""`LDLError`: every problem with a licence text, with the line and column it points at."""

from __future__ import annotations


class LDLError(ValueError):
    """A licence text that does not compile: where (1-based `line`, `column`) and what to do.

    `str(err)` is `line 3, col 7: unknown scope 'comercial' — did you mean 'commercial'?`;
    `err.render(filename)` adds the source line and a caret under the column.
    """

    def __init__(self, message: str, line: int = 1, column: int = 1, source_line: str | None = None):
        self.message = message
        self.line = line
        self.column = column
        self.source_line = source_line
        super().__init__(f"line {line}, col {column}: {message}")

    def render(self, filename: str | None = None) -> str:
        """A compiler-style report: `FILE:LINE:COL: message`, the line, and a caret."""
        where = f"{filename}:{self.line}:{self.column}" if filename else f"line {self.line}, col {self.column}"
        out = f"{where}: {self.message}"
        if self.source_line is not None and self.source_line.strip():
            shown = self.source_line.rstrip("\r\n").expandtabs(1)
            out += f"\n  {shown}\n  {' ' * (max(self.column, 1) - 1)}^"
        return out
