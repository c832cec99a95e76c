"""Token amounts as people write them: "0.002 USDC" in, "0.002 USDC" out (never raw integers).

    raw = parse("1.5 USDC", tokens)        # -> (1_500_000, "USDC")
    text = fmt(1_500_000, "USDC", 6)       # -> "1.5 USDC"

`tokens` maps symbol -> {"address", "decimals"} (an address book's `tokens`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any


class AmountError(ValueError):
    """An amount that is not '<number> <SYMBOL>' for a known token, or has too many decimals."""


def to_raw(number: str | Decimal | int, decimals: int, shown: str | None = None) -> int:
    """Whole-token `number` in raw units; refuses negatives and more decimals than the token has."""
    try:
        value = Decimal(str(number))
    except InvalidOperation:
        raise AmountError(f"{shown or number!r} is not a number (write e.g. '12.5 USDC')") from None
    if not value.is_finite() or value < 0:
        raise AmountError(f"{shown or number} is not a non-negative amount")
    if value and value.adjusted() + int(decimals) >= 78:  # at least 10**78 raw units
        raise AmountError(f"{shown or number} is more than any token amount (a uint256) can hold")
    with localcontext() as ctx:  # exact: enough digits for the whole number (the default 28 round)
        ctx.prec = len(value.as_tuple().digits) + max(0, value.as_tuple().exponent) + int(decimals) + 10
        raw = value * (Decimal(10) ** decimals)
    if raw != raw.to_integral_value():
        raise AmountError(f"{shown or number} has more than {decimals} decimals")
    if raw >= 2**256:
        raise AmountError(f"{shown or number} is more than any token amount (a uint256) can hold")
    return int(raw)


def parse(text: str, tokens: Mapping[str, Mapping[str, Any]], default_symbol: str | None = None) -> tuple[int, str]:
    """'<number> <SYMBOL>' (or '<number>' when `default_symbol` is given) -> (raw units, symbol)."""
    parts = str(text).replace(",", "").split()
    if len(parts) == 2:
        number, symbol = parts
    elif len(parts) == 1 and default_symbol:
        number, symbol = parts[0], default_symbol
    else:
        raise AmountError(f"{text!r}: write the amount with its token, e.g. '10 USDC'")
    match = {s.upper(): s for s in tokens}.get(symbol.upper())
    if match is None:
        raise AmountError(f"unknown token {symbol!r} in {text!r}; known: {', '.join(sorted(tokens)) or 'none'}")
    if default_symbol and match.upper() != default_symbol.upper():
        raise AmountError(f"{text!r} is in {match}, but this takes {default_symbol}")
    return to_raw(number, int(tokens[match]["decimals"]), shown=text), match


def fmt(raw: int, symbol: str, decimals: int) -> str:
    """Raw units as '<number> <SYMBOL>' with no trailing zeros ('0.002 USDC', '10 USDC'); exact
    for every uint256 (integer arithmetic, not Decimal's 28 significant digits)."""
    from codexfield.ldl.decompiler import format_decimal

    return f"{format_decimal(int(raw), int(decimals))} {symbol}"


def short_address(address: str) -> str:
    """'0x5FbDB2315678afecb367f032d93F642f64180aa3' -> '0x5FbD…0aa3'."""
    address = str(address)
    return address if len(address) <= 12 else f"{address[:6]}…{address[-4:]}"


def fmt_unknown(raw: int, token: str) -> str:
    """An amount of a token whose symbol and decimals are not known: the raw integer and the
    shortened token address ('2000 units of 0x5FbD…0aa3'), never a guessed unit."""
    return f"{int(raw)} units of {short_address(token)}"
