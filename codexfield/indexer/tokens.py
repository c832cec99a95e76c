"""Token symbols and decimals for the catalog: amounts in token units ("0.002 USDC").

Where the catalog learns a payment token's symbol and decimals, in this order:

1. the chain's **token list** (`codexfield/tokenlists/<chain_id>.json`, the list the LDL
   compiler and the CLI use), plus the `tokens` of the deployment's address book when the
   indexer runs from one: these tokens are *listed*;
2. else a **one-time eth_call** of `symbol()` and `decimals()` (`TokenWorker`, run once per
   indexing cycle for tokens that appeared in a `TermsCreated` or royalty event since the last
   cycle), cached in the `tokens` table: *unlisted* — the page shows the token's address next to
   the symbol, because any contract can call itself "USDC". This is the catalog's one read
   that is not an event: terms may name any ERC-20, and without it every such price would be
   a raw integer. Symbol and decimals do not change after deployment, so one call is enough;
   a token that answers neither (no code, a revert, a symbol that is not a plain ticker, more
   than 77 decimals) is stored as `unknown` and never asked again; an RPC failure is retried
   next cycle.
3. else **unknown**: the raw integer and the shortened address ("2000 units of 0x5FbD…0aa3"),
   never a guessed unit.

`TokenIndex` answers lookups for the API (table rows first, then the repository's token list,
so a catalog whose worker has not run yet still shows listed tokens in their units).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from codexfield import amounts
from codexfield.indexer import models as m
from codexfield.ldl.tokens import TokenList, load_token_list

log = logging.getLogger("codexfield.indexer")
TOKENS = m.Token.__table__
ZERO = "0x0000000000000000000000000000000000000000"
SYMBOL_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,15}\Z")  # a plain ticker: nothing a page could misread
MAX_DECIMALS = 77  # as `codexfield.ldl.tokens.TokenList`
SYMBOL_SELECTOR, DECIMALS_SELECTOR = "0x95d89b41", "0x313ce567"


@lru_cache(maxsize=64)
def repo_list(chain_id: int) -> TokenList:
    return load_token_list(int(chain_id))


def info(address: str, symbol: str | None, decimals: int | None, source: str | None) -> dict[str, Any]:
    """The `TokenInfo` of the API: symbol and decimals only when both are known."""
    known = symbol is not None and decimals is not None
    return {
        "address": address,
        "symbol": symbol if known else None,
        "decimals": decimals if known else None,
        "listed": known and source == "list",
        "source": source if known else None,
    }


def text(raw: int | str, token: Mapping[str, Any]) -> str:
    """'0.002 USDC' for a known token, '2000 units of 0x5FbD…0aa3' otherwise."""
    if token.get("symbol") is not None and token.get("decimals") is not None:
        return amounts.fmt(int(raw), token["symbol"], int(token["decimals"]))
    return amounts.fmt_unknown(int(raw), token["address"])


class TokenIndex:
    """Lookups of (chain, token address) for one API request (cached per request)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.cache: dict[tuple[int, str], dict[str, Any]] = {}

    def get(self, chain_id: int, address: str) -> dict[str, Any]:
        key = (int(chain_id), str(address).lower())
        if key not in self.cache:
            self.cache[key] = self._lookup(int(chain_id), str(address))
        return self.cache[key]

    def _lookup(self, chain_id: int, address: str) -> dict[str, Any]:
        try:
            address = to_checksum_address(address)
        except ValueError:
            return info(address, None, None, None)
        row = (
            self.conn.execute(select(TOKENS).where(TOKENS.c.chain_id == chain_id, TOKENS.c.address == address))
            .mappings()
            .first()
        )
        if row is not None and row["source"] in ("list", "chain"):
            return info(address, row["symbol"], row["decimals"], row["source"])
        listed = repo_list(chain_id).by_addr(address)
        if listed is not None and SYMBOL_RE.match(listed.symbol):
            return info(address, listed.symbol, listed.decimals, "list")
        return info(address, None, None, None)

    def token_list(self, chain_id: int) -> TokenList:
        """The listed tokens of `chain_id` (repository list + listed table rows), for the LDL
        decompiler: unlisted tokens stay `<raw> units of 0x…` in LDL, which compiles back exactly."""
        tokens = {
            t.symbol: {"address": t.address, "decimals": t.decimals} for t in repo_list(chain_id).by_symbol.values()
        }
        for r in self.conn.execute(select(TOKENS).where(TOKENS.c.chain_id == chain_id, TOKENS.c.source == "list")):
            tokens.setdefault(r.symbol, {"address": r.address, "decimals": r.decimals})
        return TokenList(chain_id, tokens)


def _decode_symbol(data: bytes) -> str | None:
    if len(data) >= 64 and int.from_bytes(data[:32], "big") == 32:
        n = int.from_bytes(data[32:64], "big")
        if n > 64 or len(data) < 64 + n:
            return None
        raw = data[64 : 64 + n]
    elif len(data) == 32:  # bytes32 symbols of early tokens (MKR)
        raw = data.rstrip(b"\0")
    else:
        return None
    try:
        symbol = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return symbol if SYMBOL_RE.match(symbol) else None


def _decode_decimals(data: bytes) -> int | None:
    if len(data) != 32:
        return None
    value = int.from_bytes(data, "big")
    return value if value <= MAX_DECIMALS else None


@dataclass
class TokenWorker:
    """Resolves the payment tokens of one chain that the catalog has not seen yet (see above).

    `source` is a `codexfield.indexer.ingest.Web3Source` (or anything with a `w3`);
    `token_list` adds listed tokens (an address book's `tokens`) to the repository's list."""

    engine: Engine
    source: Any
    chain_id: int
    token_list: Mapping[str, Mapping[str, Any]] | None = None
    listed: TokenList = field(init=False)

    def __post_init__(self):
        base = {
            t.symbol: {"address": t.address, "decimals": t.decimals}
            for t in repo_list(self.chain_id).by_symbol.values()
        }
        base.update(dict(self.token_list or {}))
        self.listed = TokenList(self.chain_id, base)

    def pending(self) -> list[str]:
        """Token addresses named by this chain's terms and royalty rows and not in `tokens`."""
        T, RV, RF = m.Terms.__table__, m.RoyaltyVault.__table__, m.RoyaltyFlow.__table__
        prefix = f"eip155:{self.chain_id}/%"
        with self.engine.connect() as conn:
            seen = {
                a.lower() for (a,) in conn.execute(select(TOKENS.c.address).where(TOKENS.c.chain_id == self.chain_id))
            }
            named = set(
                conn.execute(select(T.c.payment_token).where(T.c.chain_id == self.chain_id).distinct()).scalars()
            )
            named |= set(conn.execute(select(RV.c.token).where(RV.c.capsule_id.like(prefix)).distinct()).scalars())
            named |= set(conn.execute(select(RF.c.token).where(RF.c.source.like(prefix)).distinct()).scalars())
        return sorted({to_checksum_address(a) for a in named if a and a.lower() != ZERO and a.lower() not in seen})

    def resolve(self, address: str) -> dict[str, Any]:
        """The `tokens` row of one address; raises only when the RPC itself fails (retry later)."""
        from web3.exceptions import ContractLogicError

        now = time.time()
        listed = self.listed.by_addr(address)
        if listed is not None and SYMBOL_RE.match(listed.symbol):
            return {
                "symbol": listed.symbol,
                "decimals": listed.decimals,
                "source": "list",
                "error": None,
                "resolved_at": now,
            }
        out: dict[str, Any] = {}
        for name, selector, decode in (
            ("symbol", SYMBOL_SELECTOR, _decode_symbol),
            ("decimals", DECIMALS_SELECTOR, _decode_decimals),
        ):
            try:
                data = bytes(self.source.w3.eth.call({"to": to_checksum_address(address), "data": selector}))
            except ContractLogicError as exc:
                return {
                    "symbol": None,
                    "decimals": None,
                    "source": "unknown",
                    "error": f"{name}() reverted: {str(exc)[:200]}",
                    "resolved_at": now,
                }
            value = decode(data)
            if value is None:
                return {
                    "symbol": None,
                    "decimals": None,
                    "source": "unknown",
                    "error": f"{name}() answered {('0x' + data.hex())[:80] or 'nothing'}, not a plain "
                    f"{'ticker' if name == 'symbol' else 'number of decimals (0..77)'}",
                    "resolved_at": now,
                }
            out[name] = value
        return {**out, "source": "chain", "error": None, "resolved_at": now}

    def process(self) -> dict[str, int]:
        """Resolve every pending token; counts by outcome (`deferred`: the RPC failed)."""
        counts: dict[str, int] = {}
        for address in self.pending():
            try:
                row = self.resolve(address)
            except Exception as exc:  # noqa: BLE001 - RPC down or timing out: ask again next cycle
                log.warning("token %s: eth_call failed (%s); retried next cycle", address, str(exc)[:200])
                counts["deferred"] = counts.get("deferred", 0) + 1
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(TOKENS.insert().values(chain_id=self.chain_id, address=address, **row))
            except IntegrityError:  # another indexer of this chain stored it first
                pass
            counts[row["source"]] = counts.get(row["source"], 0) + 1
        return counts
