"""`Terms` -> LDL text: the canonical spelling of a set of terms (`decompile`).

`compile_ldl(decompile(t)).terms == t` for every valid `Terms` (tests/offchain/
test_ldl_properties.py). What the chain does not store (the licence name, the meter's name,
denied scopes) is given back only when the caller passes it or a table knows it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from eth_utils import keccak

from codexfield import scopes
from codexfield.cid import cid_from_digest

from .terms import ARBITER_ON_BREACH, LICENSOR_AT_WILL, ZERO_ADDRESS, ZERO_BYTES32, Terms
from .tokens import load_token_list

# meter names decompile finds by their keccak256 when the caller does not name the meter
KNOWN_METERS: tuple[str, ...] = (
    "llm.tokens",
    "llm.tokens.1k",
    "llm.tokens.1m",
    "llm.requests",
    "embedding.tokens.1k",
    "image.generations",
    "audio.seconds",
    "dataset.mb",
    "dataset.gb",
    "dataset.rows.1k",
    "dataset.records",
    "gpu.second",
    "gpu.hour",
    "cpu.second",
    "storage.gb.day",
    "api.call",
    "inference.call",
)
METERS_BY_HASH: dict[bytes, str] = {keccak(text=m): m for m in KNOWN_METERS}

_SPANS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_SYMBOL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*\Z")
_METER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*\Z")


def format_span(seconds: int) -> str:
    """`2592000` -> `30 days`: the largest unit that divides exactly."""
    for unit, size in _SPANS:
        if seconds % size == 0 and seconds:
            n = seconds // size
            return f"{n:_} {unit}" + ("" if n == 1 else "s")
    return "0 seconds"


def format_decimal(raw: int, decimals: int) -> str:
    """`2000, 6` -> `0.002`: exact, no exponent, no trailing zeros."""
    if decimals == 0:
        return str(raw)
    whole, frac = divmod(raw, 10**decimals)
    if frac == 0:
        return str(whole)
    return f"{whole}.{str(frac).zfill(decimals).rstrip('0')}"


def decompile(
    terms: Terms,
    chain_id: int = 31337,
    name: str | None = None,
    meter_name: str | None = None,
    token_list: Any = None,
) -> str:
    """The LDL text of `terms`, one clause per line in the canonical order.

    `name` and `meter_name` are not on chain: pass them when known (`meter_name` must hash to
    `terms.meter`); a meter in `KNOWN_METERS` is found by its hash, any other is written as
    `meter 0x<hash>`. Token amounts use the chain's token list; an unknown token is written in
    raw units: `price 2000 units of 0xabc... per MU`.
    """
    tokens = load_token_list(chain_id, token_list)
    t = terms
    lines: list[str] = []

    head = "license"
    if name:
        head += " " + json.dumps(name, ensure_ascii=False)
    lines.append(f"{head} for capsule {t.capsule_id}")

    token = tokens.by_addr(t.payment_token) if t.payment_token != ZERO_ADDRESS else None
    if token is not None and (not _SYMBOL_RE.match(token.symbol) or token.symbol in ("units", "per")):
        token = None

    def amount(raw: int) -> str:
        if token is not None:
            return f"{format_decimal(raw, token.decimals)} {token.symbol}"
        return f"{raw} units of {t.payment_token}"

    if t.payment_token == ZERO_ADDRESS and t.price_per_mu == 0 and t.upfront_fee == 0:
        lines.append("free")
    elif t.price_per_mu == 0 and t.upfront_fee:
        lines.append(f"upfront {amount(t.upfront_fee)}")
    else:
        line = f"price {amount(t.price_per_mu)} per MU"
        if t.upfront_fee:
            line += f", upfront {amount(t.upfront_fee)}"
        lines.append(line)

    if meter_name is not None:
        if keccak(text=meter_name) != t.meter:
            raise ValueError(f"meter name {meter_name!r} does not hash to the terms' meter 0x{t.meter.hex()}")
        if not _METER_RE.match(meter_name) or meter_name[:2].lower() == "0x":
            meter_name = None  # not spellable as a name: fall back to the hash
    elif t.meter in METERS_BY_HASH:
        meter_name = METERS_BY_HASH[t.meter]
    if meter_name is not None:
        lines.append(f"meter {meter_name}")
    elif t.meter != ZERO_BYTES32:
        lines.append(f"meter 0x{t.meter.hex()}")

    lines.append(f"duration {format_span(t.duration)}" if t.duration else "perpetual")
    lines.append(f"quota {t.mu_quota:_} MU" if t.mu_quota else "quota unlimited")
    if t.rate_mu or t.rate_period:
        per = format_span(t.rate_period)
        if per.startswith("1 "):
            per = per[2:]
        lines.append(f"rate {t.rate_mu:_} MU per {per}")

    allow = [s.name for s in scopes.SCOPES if t.scope & s.mask and s.group != "requirement"]
    allow += [f"bit {b}" for b in range(256) if t.scope >> b & 1 and b not in scopes.BY_BIT]
    require = [s.name for s in scopes.SCOPES if t.scope & s.mask and s.group == "requirement"]
    if allow:
        lines.append("allow " + ", ".join(allow))
    if require:
        lines.append("require " + ", ".join(require))
    if t.derivative_share_bps:
        lines.append(f"derivatives pay {format_decimal(t.derivative_share_bps, 2)}%")

    parties = []
    if t.revocation & LICENSOR_AT_WILL:
        party = "by licensor"
        if t.notice_period:
            party += f" with notice {format_span(t.notice_period)}"
        parties.append(party)
    if t.revocation & ARBITER_ON_BREACH:
        parties.append("by arbiter")
    lines.append("revocable " + ", ".join(parties) if parties else "irrevocable")
    if t.notice_period and not t.revocation & LICENSOR_AT_WILL:
        lines.append(f"notice {format_span(t.notice_period)}")  # not valid LDL: such terms are inconsistent

    if t.max_credentials:
        lines.append(f"max {t.max_credentials:_} credentials")
    lines.append("transferable" if t.transferable else "non-transferable")
    if t.text_hash != ZERO_BYTES32:
        lines.append(f"text ipfs://{cid_from_digest(t.text_hash)}")
    return "\n".join(lines) + "\n"
