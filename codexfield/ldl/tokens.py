"""Token lists: which payment token a symbol names on a chain, and back.

`codexfield/tokenlists/<chain_id>.json` is kept in the repository:

    {"chain_id": 31337, "tokens": {"USDC": {"address": "0x...", "decimals": 6}, ...}}

A caller may pass its own list (the same shape, or just the `tokens` mapping, e.g. the
`tokens` of an address book) to `compile_ldl(..., token_list=...)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

TOKENLISTS_DIR = Path(__file__).resolve().parents[1] / "tokenlists"


@dataclass(frozen=True)
class Token:
    symbol: str
    address: str  # checksummed
    decimals: int


class TokenList:
    """The tokens known on one chain, by symbol (case-insensitive) and by address."""

    def __init__(self, chain_id: int, tokens: Mapping[str, Mapping[str, Any]]):
        self.chain_id = chain_id
        self.by_symbol: dict[str, Token] = {}
        self.by_address: dict[str, Token] = {}
        for symbol, info in tokens.items():
            decimals = int(info["decimals"])
            if not 0 <= decimals <= 77:
                raise ValueError(f"token {symbol}: decimals must be 0..77, got {decimals}")
            token = Token(symbol, to_checksum_address(info["address"]), decimals)
            self.by_symbol[symbol] = token
            self.by_address.setdefault(token.address.lower(), token)

    @property
    def symbols(self) -> list[str]:
        return sorted(self.by_symbol)

    def lookup(self, symbol: str) -> Token | None:
        """The token of `symbol`: an exact match first, else a unique case-insensitive one."""
        if symbol in self.by_symbol:
            return self.by_symbol[symbol]
        matches = [t for s, t in self.by_symbol.items() if s.lower() == symbol.lower()]
        return matches[0] if len(matches) == 1 else None

    def by_addr(self, address: str) -> Token | None:
        return self.by_address.get(address.lower())


def load_token_list(chain_id: int, token_list: Any = None) -> TokenList:
    """The token list for `chain_id`: `token_list` if given (a mapping or a JSON file path),
    else the repository's `codexfield/tokenlists/<chain_id>.json`, else an empty list."""
    if token_list is None:
        path = TOKENLISTS_DIR / f"{chain_id}.json"
        data: Any = json.loads(path.read_text()) if path.exists() else {"tokens": {}}
    elif isinstance(token_list, TokenList):
        return token_list
    elif isinstance(token_list, (str, Path)):
        data = json.loads(Path(token_list).read_text())
    else:
        data = token_list
    tokens = data.get("tokens", data) if isinstance(data, Mapping) else {}
    if "tokens" not in data and "chain_id" in data:
        tokens = {}
    return TokenList(chain_id, tokens)
