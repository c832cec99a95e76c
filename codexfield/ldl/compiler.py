"""LDL text -> `Terms`: the lark parse (shape) and the semantic pass (meaning).

Every error is an `LDLError` with the line and column of the offending word and a message
that says what to write instead.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_utils import is_checksum_address, keccak, to_checksum_address
from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from codexfield import scopes
from codexfield.cid import CIDError, digest_from_cid

from .decompiler import format_span
from .errors import LDLError
from .terms import (
    ARBITER_ON_BREACH,
    LICENSOR_AT_WILL,
    UINT32_MAX,
    UINT64_MAX,
    UINT256_MAX,
    ZERO_ADDRESS,
    ZERO_BYTES32,
    Terms,
)
from .tokens import Token as PaymentToken
from .tokens import TokenList, load_token_list

GRAMMAR = Path(__file__).with_name("grammar.lark")

# time units: every spelling -> seconds (months and years are not fixed lengths: use days)
UNITS: dict[str, int] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
    (("w", "week", "weeks"), 7 * 86400),
):
    for _n in _names:
        UNITS[_n] = _seconds

# aliases accepted in `require` lists
REQUIREMENT_ALIASES = {"tee": "tee_required"}

# the words a clause may start with, in the canonical clause order
CLAUSE_KEYWORDS = (
    "license", "price", "upfront", "free", "meter", "duration", "perpetual", "quota", "rate",
    "allow", "deny", "require", "derivatives", "irrevocable", "revocable", "notice", "max",
    "transferable", "non-transferable", "text",
)  # fmt: skip

# human names of the grammar's pattern terminals (string terminals are shown quoted)
_TERMINAL_NAMES = {
    "STRING": 'a quoted string ("...")',
    "HEX": "a 0x-prefixed hex value",
    "NUMBER": "a number",
    "SYMBOL": "a token symbol (e.g. USDC)",
    "METER_NAME": "a meter name (e.g. llm.tokens.1k)",
    "SCOPE_NAME": "a scope name",
    "UNIT": "a time unit (seconds, minutes, hours, days, weeks)",
    "IPFS_URI": "an ipfs://<cid> URI",
    "_NL": "a new line",
    "SEMICOLON": "';'",
    "$END": "the end of the text",
}

_MAX_NUMBER_CHARS = 200  # longer numbers cannot fit any field; refuse before converting


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser of `grammar.lark` (built once)."""
    return Lark(
        GRAMMAR.read_text(), parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=True
    )


@lru_cache(maxsize=1)
def _terminal_display() -> dict[str, str]:
    names = dict(_TERMINAL_NAMES)
    for t in parser().terminals:
        if t.name not in names and t.pattern.type == "str":
            names[t.name] = f"'{t.pattern.value}'"
    return names


def _suggest(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not close:
        close = [c for c in candidates if c.lower() == word.lower()]
    return f" — did you mean '{close[0]}'?" if close else ""


@dataclass
class CompiledLicense:
    """What `compile_ldl` returns: the on-chain `terms` plus what only the text knows."""

    terms: Terms
    name: str = ""
    meter_name: str | None = None  # None when the text gave the meter as a raw hash (or none)
    token_symbol: str | None = None  # None for a raw address or no token
    token_decimals: int | None = None
    denied: int = 0  # scopes the text explicitly denied (checked, not stored on chain)
    chain_id: int = 31337
    text_source: str | None = None  # the `text` clause as written (ipfs://..., file "...", 0x...)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "chain_id": self.chain_id,
            "meter_name": self.meter_name,
            "token": {
                "symbol": self.token_symbol,
                "address": self.terms.payment_token,
                "decimals": self.token_decimals,
            },
            "scopes": scopes.names_of(self.terms.scope),
            "denied": scopes.names_of(self.denied),
            "text_source": self.text_source,
            "terms": self.terms.to_json(),
            "abi": self.terms.abi_text(),
        }


@dataclass
class _Amount:
    raw: int
    token: PaymentToken | None  # a token-list entry
    address: str | None  # the payment token address (None when the amount named no token)
    where: Any  # the tree / token to point errors at


@dataclass
class _State:
    first: dict[str, int] = field(default_factory=dict)  # clause kind -> first line
    name: str = ""
    capsule_id: int | None = None
    price: _Amount | None = None
    upfront: _Amount | None = None
    meter: bytes = ZERO_BYTES32
    meter_name: str | None = None
    duration: int = 0
    quota: int = 0
    rate_mu: int = 0
    rate_period: int = 0
    allow: int = 0
    deny: int = 0
    require: int = 0
    scope_pos: dict[int, Any] = field(default_factory=dict)  # bit mask -> where it was allowed
    deny_pos: dict[int, Any] = field(default_factory=dict)
    share_bps: int = 0
    revocation: int = 0
    licensor_pos: Any = None
    notice: int | None = None
    notice_pos: Any = None
    max_credentials: int = 0
    transferable: bool = False
    text_hash: bytes = ZERO_BYTES32
    text_source: str | None = None


class _Compiler:
    def __init__(self, text: str, chain_id: int, tokens: TokenList, base_dir: Path):
        self.text = text
        self.lines = text.split("\n")
        self.chain_id = chain_id
        self.tokens = tokens
        self.base_dir = base_dir
        self.s = _State()
        self._quota_tok: Token | None = None
        self._rate_node: Tree | None = None
        self._share_node: Tree | None = None

    # ---- errors -----------------------------------------------------------------------
    def error(self, message: str, where: Any = None) -> LDLError:
        line, column = 1, 1
        if isinstance(where, Token):
            line, column = where.line or 1, where.column or 1
        elif isinstance(where, Tree) and not where.meta.empty:
            line, column = where.meta.line, where.meta.column
        elif isinstance(where, tuple):
            line, column = where
        source = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        return LDLError(message, line, column, source)

    def parse_error(self, exc: UnexpectedInput) -> LDLError:
        line, column = exc.line if exc.line and exc.line > 0 else 1, exc.column if exc.column and exc.column > 0 else 1
        expected: set[str] = set()
        word = ""
        if isinstance(exc, UnexpectedToken):
            try:
                expected = set(exc.interactive_parser.accepts())
            except Exception:  # pragma: no cover - older lark or a broken state: fall back
                expected = set(exc.expected or ())
            tok = exc.token
            if tok.type == "$END":
                line, column = len(self.lines) or 1, len(self.lines[-1]) + 1 if self.lines else 1
            else:
                word = str(tok.value)
                if tok.type == "_NL":
                    word = "\n"
        elif isinstance(exc, UnexpectedCharacters):
            expected = set(exc.allowed or ())
            m = re.compile(r"[A-Za-z0-9_.\-]+|\S").match(self.text, exc.pos_in_stream)
            word = m.group(0) if m else self.text[exc.pos_in_stream : exc.pos_in_stream + 1]
        expected.discard("$END")
        display = _terminal_display()
        human = sorted({display.get(e, e) for e in expected})
        at_clause_start = "PRICE" in expected and "LICENSE" in expected
        if word == "\n":
            what = "end of line"
        elif word and not word.isprintable():
            what = "character " + ", ".join(f"U+{ord(ch):04X}" for ch in word)
        elif word:
            what = f"'{word}'"
        else:
            what = "end of text"
        if word == '"' and isinstance(exc, UnexpectedCharacters):
            return self.error('unterminated string: close it with " on the same line', (line, column))
        if at_clause_start:
            kw = ", ".join(CLAUSE_KEYWORDS)
            if word and word != "\n" and re.match(r"[A-Za-z]", word):
                return self.error(
                    f"unknown clause '{word}'{_suggest(word, CLAUSE_KEYWORDS)} A clause starts with one of: {kw}",
                    (line, column),
                )
            return self.error(f"unexpected {what}; a clause starts with one of: {kw}", (line, column))
        if expected and expected <= {"_NL", "SEMICOLON", "COMMA"} and word != "\n":
            seps = "',' or " if "COMMA" in expected else ""
            return self.error(
                f"unexpected {what}: the clause is complete here; "
                f"expected {seps}';' or a new line before the next clause",
                (line, column),
            )
        if len(human) == 1:
            exp = human[0]
        else:
            exp = "one of " + ", ".join(human)
        hint = ""
        if word and word != "\n" and re.match(r"[A-Za-z]", word):
            keywords = [display[e].strip("'") for e in expected if display.get(e, "").startswith("'")]
            hint = _suggest(word, keywords)
            if hint:
                hint = hint.replace(" — ", "; ")
        return self.error(f"unexpected {what}; expected {exp}{hint}", (line, column))

    # ---- numbers ----------------------------------------------------------------------
    def number(self, tok: Token) -> Fraction:
        digits = str(tok).replace("_", "")
        if len(digits) > _MAX_NUMBER_CHARS:
            raise self.error(f"number with {len(digits)} digits is far too large for any licence field", tok)
        return Fraction(digits)

    def integer(self, tok: Token, what: str, maximum: int, bound: str) -> int:
        value = self.number(tok)
        if value.denominator != 1:
            raise self.error(f"{what} must be a whole number, got {tok}", tok)
        n = int(value)
        if n > maximum:
            raise self.error(f"{what} {tok} is too large: it must fit a {bound} (at most {maximum:_})", tok)
        return n

    def span(self, node: Tree, what: str, bound: str = "uint64", maximum: int = UINT64_MAX) -> int:
        num, unit = node.children
        return self.seconds(self.number(num), unit, num, what, maximum, bound)

    def seconds(
        self, value: Fraction, unit: Token, where: Token, what: str, maximum: int = UINT64_MAX, bound: str = "uint64"
    ) -> int:
        u = str(unit)
        if u not in UNITS:
            if u.lower() in ("month", "months", "mo", "year", "years", "y", "yr", "yrs"):
                raise self.error(
                    f"'{u}' is not a fixed number of seconds; write days instead (e.g. 30 days, 365 days)", unit
                )
            raise self.error(
                f"unknown time unit '{u}'{_suggest(u, ['seconds', 'minutes', 'hours', 'days', 'weeks'])} "
                "Units: seconds (s, sec), minutes (min), hours (h), days (d), weeks (w)",
                unit,
            )
        total = value * UNITS[u]
        if total.denominator != 1:
            raise self.error(f"{what} of {where} {u} is not a whole number of seconds", where)
        n = int(total)
        if n > maximum:
            raise self.error(
                f"{what} of {where} {u} is too long: {n:_} seconds does not fit a {bound} (at most {maximum:_})", where
            )
        return n

    # ---- clauses ----------------------------------------------------------------------
    def once(self, kind: str, node: Any, label: str | None = None) -> None:
        where = node.meta.line if isinstance(node, Tree) else node.line
        if kind in self.s.first:
            raise self.error(
                f"duplicate '{label or kind}' clause (the first is on line {self.s.first[kind]}); keep one", node
            )
        self.s.first[kind] = where

    def run(self) -> _State:
        try:
            tree = parser().parse(self.text + "\n")
        except UnexpectedInput as exc:
            raise self.parse_error(exc) from None
        except LarkError as exc:  # pragma: no cover - lark's other errors carry no position
            raise self.error(f"cannot parse the licence: {exc}") from None
        for clause in tree.children:
            getattr(self, "c_" + clause.data)(clause)
        return self.s

    def c_license_clause(self, node: Tree) -> None:
        self.once("license", node)
        name, capsule = node.children
        if name is not None:
            try:
                self.s.name = json.loads(str(name), strict=False)
            except ValueError:
                raise self.error(
                    r"bad escape in the licence name; use \" for a quote and \\ for a backslash", name
                ) from None
        if capsule is not None:
            self.s.capsule_id = self.integer(capsule, "capsule id", UINT256_MAX, "uint256")

    def amount(self, node: Tree, what: str) -> _Amount:
        num, tok = node.children
        value = self.number(num)
        if tok is None:
            if value != 0:
                known = ", ".join(self.tokens.symbols) or "none"
                raise self.error(
                    f"{what} {num} names no token; write e.g. '{num} USDC' (known on chain {self.chain_id}: {known}) "
                    f"or '{num} units of 0x<token address>'",
                    num,
                )
            return _Amount(0, None, None, node)
        kind = tok.data
        target = tok.children[0]
        if kind in ("token_symbol", "units_symbol"):
            token = self.tokens.lookup(str(target))
            if token is None:
                known = ", ".join(self.tokens.symbols)
                where = (
                    f"known on chain {self.chain_id}: {known}" if known else f"chain {self.chain_id} has no token list"
                )
                raise self.error(
                    f"unknown token '{target}'{_suggest(str(target), self.tokens.symbols)} ({where}); "
                    f"or give the token address as 'N units of 0x...'",
                    target,
                )
            address = token.address
            decimals = 0 if kind == "units_symbol" else token.decimals
        else:
            address = self.address(target)
            token = self.tokens.by_addr(address)
            decimals = 0  # an address amount is always in raw units
        scaled = value * 10**decimals
        if scaled.denominator != 1:
            if kind == "token_symbol":
                smallest = "0." + "0" * (decimals - 1) + "1" if decimals else "1"
                raise self.error(
                    f"{target} has {decimals} decimals: {num} {target} has more "
                    f"(the smallest amount is {smallest} {target})",
                    num,
                )
            raise self.error(f"{what} in raw units must be a whole number, got {num}", num)
        raw = int(scaled)
        if raw > UINT256_MAX:
            raise self.error(f"{what} {num} is too large: {raw:_} units does not fit a uint256", num)
        return _Amount(raw, token, address, node)

    def address(self, tok: Token) -> str:
        text = str(tok)
        if len(text) != 42:
            raise self.error(
                f"'{text}' is not an address: an address has 40 hex digits after 0x, this has {len(text) - 2}", tok
            )
        if text[2:] != text[2:].lower() and text[2:] != text[2:].upper() and not is_checksum_address(text):
            raise self.error(
                f"'{text}' has a bad EIP-55 checksum (a typo?); the checksummed form is {to_checksum_address(text)} "
                "— or write it all lower case",
                tok,
            )
        return to_checksum_address(text)

    def bytes32(self, tok: Token, what: str) -> bytes:
        text = str(tok)
        if len(text) != 66:
            raise self.error(f"{what} '{text}' must have 64 hex digits after 0x, this has {len(text) - 2}", tok)
        return bytes.fromhex(text[2:])

    def c_price_clause(self, node: Tree) -> None:
        amount, upfront = node.children
        self.once("price", node)
        self.s.price = self.amount(amount, "price")
        if upfront is not None:
            self.c_upfront_clause(upfront)

    def c_upfront_clause(self, node: Tree) -> None:
        self.once("upfront", node)
        self.s.upfront = self.amount(node.children[0], "upfront fee")

    def c_free_clause(self, node: Tree) -> None:
        self.once("free", node)

    def c_meter_clause(self, node: Tree) -> None:
        self.once("meter", node)
        tok = node.children[0]
        if tok.type == "HEX":
            self.s.meter = self.bytes32(tok, "a meter hash")
            if self.s.meter == ZERO_BYTES32:
                raise self.error("the meter hash is zero; name the meter (e.g. 'meter llm.tokens.1k')", tok)
        else:
            self.s.meter_name = str(tok)
            self.s.meter = keccak(text=self.s.meter_name)

    def c_duration_clause(self, node: Tree) -> None:
        self.once("duration", node, "duration/perpetual")
        if node.children:
            self.s.duration = self.span(node.children[0], "duration")
            if self.s.duration == 0:
                raise self.error(
                    "a duration of 0 would expire at once; write 'perpetual' for no expiry", node.children[0]
                )

    def c_perpetual_clause(self, node: Tree) -> None:
        self.once("duration", node, "duration/perpetual")

    def c_quota_clause(self, node: Tree) -> None:
        self.once("quota", node)
        if node.children:
            tok = node.children[0]
            self.s.quota = self.integer(tok, "quota", UINT256_MAX, "uint256")
            if self.s.quota == 0:
                raise self.error(
                    "a quota of 0 MU allows no use; write 'quota unlimited' or omit the clause for no cap", tok
                )
            self._quota_tok = tok

    def c_rate_clause(self, node: Tree) -> None:
        self.once("rate", node)
        num, per = node.children
        self.s.rate_mu = self.integer(num, "rate", UINT256_MAX, "uint256")
        if self.s.rate_mu == 0:
            raise self.error("a rate of 0 MU allows no use; omit the rate clause for no rate limit", num)
        if isinstance(per, Tree):
            self.s.rate_period = self.span(per, "rate period")
        else:
            self.s.rate_period = self.seconds(Fraction(1), per, per, "rate period")
        if self.s.rate_period == 0:
            raise self.error("the rate period must be at least 1 second", per)
        self._rate_node = node

    def scope_items(self, node: Tree, allowed_groups: tuple[str, ...], verb: str) -> list[tuple[int, Any]]:
        out = []
        for item in node.children:
            tok = item.children[0]
            if tok.type == "NUMBER":
                bit = self.integer(tok, "scope bit", 255, "uint256 bit index (0..255)")
                out.append((1 << bit, tok))
                continue
            name = str(tok)
            if verb == "require" or name in REQUIREMENT_ALIASES:
                name = REQUIREMENT_ALIASES.get(name, name)
            scope = scopes.BY_NAME.get(name)
            if scope is None:
                candidates = [s.name for s in scopes.SCOPES if s.group in allowed_groups]
                if verb == "require":
                    candidates += list(REQUIREMENT_ALIASES)
                raise self.error(
                    f"unknown scope '{name}'{_suggest(name, candidates)} Known here: {', '.join(candidates)}", tok
                )
            if scope.group not in allowed_groups:
                if scope.group == "requirement":
                    raise self.error(f"'{tok}' is a requirement, not a right: write 'require {tok}'", tok)
                raise self.error(
                    f"'{name}' is a {'usage right' if scope.group == 'right' else 'scenario tag'}: "
                    f"write 'allow {name}'",
                    tok,
                )
            out.append((scope.mask, tok))
        return out

    def c_allow_clause(self, node: Tree) -> None:
        for mask, tok in self.scope_items(node, ("right", "scenario"), "allow"):
            self.s.allow |= mask
            self.s.scope_pos.setdefault(mask, tok)

    def c_require_clause(self, node: Tree) -> None:
        for mask, tok in self.scope_items(node, ("requirement",), "require"):
            self.s.require |= mask
            self.s.scope_pos.setdefault(mask, tok)

    def c_deny_clause(self, node: Tree) -> None:
        for mask, tok in self.scope_items(node, ("right", "scenario"), "deny"):
            self.s.deny |= mask
            self.s.deny_pos.setdefault(mask, tok)

    def c_share_clause(self, node: Tree) -> None:
        self.once("derivatives pay", node)
        tok = node.children[0]
        bps = self.number(tok) * 100
        if bps.denominator != 1:
            raise self.error(
                f"derivative share {tok}% has more than 2 decimals (the smallest step is 0.01% = 1 bps)", tok
            )
        if bps > 10_000:
            raise self.error(f"derivative share {tok}% is above 100%", tok)
        self.s.share_bps = int(bps)
        self._share_node = node

    def c_irrevocable_clause(self, node: Tree) -> None:
        self.once("revocation", node, "irrevocable/revocable")

    def c_revocable_clause(self, node: Tree) -> None:
        self.once("revocation", node, "irrevocable/revocable")
        for party in node.children:
            bit = LICENSOR_AT_WILL if party.data == "licensor_party" else ARBITER_ON_BREACH
            if self.s.revocation & bit:
                raise self.error(f"'by {party.children[0]}' is listed twice", party)
            self.s.revocation |= bit
            if bit == LICENSOR_AT_WILL:
                self.s.licensor_pos = party
                if party.children[1] is not None:
                    self.set_notice(party.children[1])

    def c_notice_clause(self, node: Tree) -> None:
        self.set_notice(node.children[0])

    def set_notice(self, span: Tree) -> None:
        self.once("notice", span)
        self.s.notice = self.span(span, "notice period")
        self.s.notice_pos = span

    def c_max_clause(self, node: Tree) -> None:
        self.once("max credentials", node)
        tok = node.children[0]
        self.s.max_credentials = self.integer(tok, "max credentials", UINT32_MAX, "uint32")
        if self.s.max_credentials == 0:
            raise self.error("'max 0 credentials' would allow no sale; omit the clause for unlimited credentials", tok)

    def c_transferable_clause(self, node: Tree) -> None:
        self.once("transferable", node, "transferable/non-transferable")
        self.s.transferable = True

    def c_non_transferable_clause(self, node: Tree) -> None:
        self.once("transferable", node, "transferable/non-transferable")

    def c_text_clause(self, node: Tree) -> None:
        self.once("text", node)
        tok = node.children[0]
        if tok.type == "IPFS_URI":
            try:
                self.s.text_hash = digest_from_cid(str(tok))
            except CIDError as exc:
                raise self.error(
                    f"{exc}; put the CIDv1 of the licence text here (codexfield.cid.cid_of)", tok
                ) from None
            self.s.text_source = str(tok)
        elif tok.type == "STRING":
            try:
                rel = json.loads(str(tok), strict=False)
            except ValueError:
                raise self.error("bad escape in the file name", tok) from None
            path = self.base_dir / rel
            try:
                data = path.read_bytes()
            except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
                reason = getattr(exc, "strerror", None) or exc
                raise self.error(f"cannot read the licence text file {str(path)!r}: {reason}", tok) from None
            self.s.text_hash = hashlib.sha256(data).digest()
            self.s.text_source = f"file {tok}"
        else:
            self.s.text_hash = self.bytes32(tok, "the text hash")
            self.s.text_source = str(tok)

    # ---- the whole licence ------------------------------------------------------------
    def finish(self, capsule_override: int | None) -> CompiledLicense:
        s = self.s
        if capsule_override is not None:
            if not 0 <= capsule_override <= UINT256_MAX:
                raise self.error(f"capsule id {capsule_override} does not fit a uint256")
            s.capsule_id = capsule_override
        if s.capsule_id is None:
            raise self.error("which capsule? add 'license \"<name>\" for capsule <id>' (or pass --capsule ID)", (1, 1))
        # payment token and amounts
        amounts = [a for a in (s.price, s.upfront) if a is not None]
        if "free" in s.first and amounts:
            first = amounts[0]
            raise self.error("'free' conflicts with a price or upfront clause; keep one", first.where)
        named = [a for a in amounts if a.address is not None]
        if len(named) == 2 and named[0].address != named[1].address:
            raise self.error(
                "the price and the upfront fee name different tokens; one licence is paid in one token",
                named[1].where,
            )
        address = named[0].address if named else ZERO_ADDRESS
        token = named[0].token if named else None
        price = s.price.raw if s.price else 0
        upfront = s.upfront.raw if s.upfront else 0
        if address == ZERO_ADDRESS and (price or upfront):
            raise self.error("the payment token is the zero address; name a token (e.g. USDC)", named[0].where)
        # metering
        if s.meter == ZERO_BYTES32:
            for needed, what, where in (
                (price, "a per-MU price", s.price.where if s.price else None),
                (s.quota, "a quota", self._quota_tok),
                (s.rate_mu, "a rate limit", self._rate_node),
            ):
                if needed:
                    raise self.error(
                        f"{what} is counted in MU: add a 'meter' clause saying what one MU is "
                        "(e.g. 'meter llm.tokens.1k')",
                        where,
                    )
        if s.quota and s.rate_mu > s.quota:
            raise self.error(
                f"the quota ({s.quota:_} MU) is below the rate "
                f"({s.rate_mu:_} MU per {format_span(s.rate_period).removeprefix('1 ')}): "
                "the rate can never be reached; raise the quota or lower the rate",
                self._quota_tok,
            )
        # scopes
        clash = s.allow & s.deny
        if clash:
            mask = next(m for m in s.deny_pos if m & clash)
            name = (scopes.names_of(mask) or [f"bit {mask.bit_length() - 1}"])[0]
            allowed_at = s.scope_pos.get(mask)
            line = f" on line {allowed_at.line}" if allowed_at is not None else ""
            raise self.error(
                f"scope '{name}' is allowed{line} and denied here; remove it from one list", s.deny_pos[mask]
            )
        scope = s.allow | s.require
        if s.share_bps and not scope & scopes.DERIVATIVES:
            raise self.error(
                "a derivative share needs derivatives to be allowed: add 'allow derivatives'", self._share_node
            )
        # revocation
        if s.notice is not None and not s.revocation & LICENSOR_AT_WILL:
            raise self.error(
                "a notice period applies only to revocation by the licensor: write "
                "'revocable by licensor with notice ...' or remove the notice",
                s.notice_pos,
            )
        terms = Terms(
            capsule_id=s.capsule_id,
            payment_token=address,
            price_per_mu=price,
            upfront_fee=upfront,
            meter=s.meter,
            duration=s.duration,
            mu_quota=s.quota,
            rate_mu=s.rate_mu,
            rate_period=s.rate_period,
            scope=scope,
            derivative_share_bps=s.share_bps,
            revocation=s.revocation,
            notice_period=s.notice or 0,
            max_credentials=s.max_credentials,
            transferable=s.transferable,
            text_hash=s.text_hash,
        )
        return CompiledLicense(
            terms=terms,
            name=s.name,
            meter_name=s.meter_name,
            token_symbol=token.symbol if token else None,
            token_decimals=token.decimals if token else None,
            denied=s.deny,
            chain_id=self.chain_id,
            text_source=s.text_source,
        )


def compile_ldl(
    text: str,
    chain_id: int = 31337,
    token_list: Any = None,
    base_dir: str | Path | None = None,
    capsule_id: int | None = None,
) -> CompiledLicense:
    """Compile a licence text to `Terms` (raises `LDLError` with a line and a column).

    `token_list` overrides `codexfield/tokenlists/<chain_id>.json`; `base_dir` is where
    `text file "..."` paths start (default: the working directory); `capsule_id` overrides the
    `for capsule N` clause.
    """
    if not isinstance(text, str):
        raise TypeError("compile_ldl takes the licence text as a str")
    tokens = load_token_list(chain_id, token_list)
    compiler = _Compiler(text, chain_id, tokens, Path(base_dir) if base_dir is not None else Path.cwd())
    compiler.run()
    return compiler.finish(capsule_id)
