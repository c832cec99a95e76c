"""The CodexField License Description Language (LDL, DESIGN §4.2).

A small text language for licence terms that compiles to the `LicenseManager.Terms` struct
and back:

    >>> lic = compile_ldl('license "Demo" for capsule 1; price 0.002 USDC per MU; meter gpu.second')
    >>> lic.terms.price_per_mu
    2000
    >>> compile_ldl(decompile(lic.terms)).terms == lic.terms
    True

The grammar is `grammar.lark`; the language reference is docs/ldl.md.
"""

from __future__ import annotations

from .compiler import CLAUSE_KEYWORDS, UNITS, CompiledLicense, compile_ldl
from .decompiler import KNOWN_METERS, decompile, format_decimal, format_span
from .errors import LDLError
from .terms import ABI_FIELDS, ABI_TYPE, ARBITER_ON_BREACH, LICENSOR_AT_WILL, Terms
from .tokens import TokenList, load_token_list

__all__ = [
    "ABI_FIELDS",
    "ABI_TYPE",
    "ARBITER_ON_BREACH",
    "CLAUSE_KEYWORDS",
    "KNOWN_METERS",
    "LICENSOR_AT_WILL",
    "UNITS",
    "CompiledLicense",
    "LDLError",
    "Terms",
    "TokenList",
    "compile_ldl",
    "decompile",
    "format_decimal",
    "format_span",
    "load_token_list",
]
