"""Keys for signing in tests: an ape test account, an eth-account key or raw bytes -> the raw key."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount


def private_key(who: Any) -> bytes:
    """The raw secp256k1 key of an ape test account (`.private_key`), a LocalAccount (`.key`) or a key."""
    raw = getattr(who, "private_key", None) or getattr(who, "key", None) or who
    if isinstance(raw, str):
        raw = bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
    return bytes(raw)


def fresh() -> LocalAccount:
    """A new key nobody funded or registered: a stranger's signature, a hot key, a delegate."""
    return Account.create()
