"""`Terms`: the on-chain licence terms of `LicenseManager` (DESIGN §3.3) as a Python value.

The field order is the ABI tuple of `LicenseManager.create_terms(terms)` and of `terms(id)`;
`Terms.as_tuple()` produces it and `Terms.from_tuple()` reads it back (from a plain tuple, a
list, a mapping or the struct object ape returns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from eth_utils import to_checksum_address

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_BYTES32 = bytes(32)

# revocation bitmask (Terms.revocation); 0 = irrevocable
LICENSOR_AT_WILL = 1
ARBITER_ON_BREACH = 2
REVOCATION_MASK = LICENSOR_AT_WILL | ARBITER_ON_BREACH

UINT8_MAX = 2**8 - 1
UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1

# (field, solidity type) in ABI order: the binding layout of the Terms struct
ABI_FIELDS: tuple[tuple[str, str], ...] = (
    ("capsule_id", "uint256"),
    ("payment_token", "address"),
    ("price_per_mu", "uint256"),
    ("upfront_fee", "uint256"),
    ("meter", "bytes32"),
    ("duration", "uint64"),
    ("mu_quota", "uint256"),
    ("rate_mu", "uint256"),
    ("rate_period", "uint64"),
    ("scope", "uint256"),
    ("derivative_share_bps", "uint16"),
    ("revocation", "uint8"),
    ("notice_period", "uint64"),
    ("max_credentials", "uint32"),
    ("transferable", "bool"),
    ("text_hash", "bytes32"),
)

ABI_TYPE = "(" + ",".join(t for _, t in ABI_FIELDS) + ")"

UINT_MAX = {
    "uint8": UINT8_MAX,
    "uint16": UINT16_MAX,
    "uint32": UINT32_MAX,
    "uint64": UINT64_MAX,
    "uint256": UINT256_MAX,
}


def _to_bytes32(value: Any) -> bytes:
    if isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        value = bytes.fromhex(text)
    value = bytes(value)
    if len(value) != 32:
        raise ValueError(f"a bytes32 has 32 bytes, got {len(value)}")
    return value


@dataclass(frozen=True)
class Terms:
    """One set of licence terms, field for field the `LicenseManager.Terms` struct."""

    capsule_id: int
    payment_token: str = ZERO_ADDRESS
    price_per_mu: int = 0
    upfront_fee: int = 0
    meter: bytes = ZERO_BYTES32
    duration: int = 0
    mu_quota: int = 0
    rate_mu: int = 0
    rate_period: int = 0
    scope: int = 0
    derivative_share_bps: int = 0
    revocation: int = 0
    notice_period: int = 0
    max_credentials: int = 0
    transferable: bool = False
    text_hash: bytes = ZERO_BYTES32

    def __post_init__(self) -> None:
        # normalise representations so that equal terms compare equal
        object.__setattr__(self, "payment_token", to_checksum_address(self.payment_token))
        object.__setattr__(self, "meter", _to_bytes32(self.meter))
        object.__setattr__(self, "text_hash", _to_bytes32(self.text_hash))
        object.__setattr__(self, "transferable", bool(self.transferable))
        for name, typ in ABI_FIELDS:
            if typ.startswith("uint"):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int):
                    value = int(value)
                    object.__setattr__(self, name, value)
                if not 0 <= value <= UINT_MAX[typ]:
                    raise ValueError(f"{name} = {value} does not fit a {typ}")

    def as_tuple(self) -> tuple:
        """The ABI tuple, in struct order: pass it to `create_terms(...)`."""
        return tuple(getattr(self, name) for name, _ in ABI_FIELDS)

    @classmethod
    def from_tuple(cls, value: Any) -> Terms:
        """Terms from an ABI tuple/list, a mapping by field name, or an ape struct."""
        if isinstance(value, Mapping):
            return cls(**{name: value[name] for name, _ in ABI_FIELDS})
        if all(hasattr(value, name) for name, _ in ABI_FIELDS):
            return cls(**{name: getattr(value, name) for name, _ in ABI_FIELDS})
        items = tuple(value)
        if len(items) != len(ABI_FIELDS):
            raise ValueError(f"a Terms tuple has {len(ABI_FIELDS)} fields, got {len(items)}")
        return cls(*items)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: uint256 fields as decimal strings (JavaScript-safe), smaller
        integers as numbers, bytes32 as 0x-hex, the address checksummed."""
        out: dict[str, Any] = {}
        for name, typ in ABI_FIELDS:
            value = getattr(self, name)
            if typ == "bytes32":
                out[name] = "0x" + value.hex()
            elif typ == "uint256":
                out[name] = str(value)
            else:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Terms:
        """The inverse of `to_json` (integers may be numbers or decimal strings)."""
        kwargs: dict[str, Any] = {}
        for name, typ in ABI_FIELDS:
            value = data[name]
            kwargs[name] = int(value) if typ.startswith("uint") else value
        return cls(**kwargs)

    def abi_text(self) -> str:
        """The tuple in `cast`'s syntax: `(42,0x5FbD...,2000,...,false,0x...)`."""
        parts = []
        for name, typ in ABI_FIELDS:
            value = getattr(self, name)
            if typ == "bytes32":
                parts.append("0x" + value.hex())
            elif typ == "bool":
                parts.append("true" if value else "false")
            else:
                parts.append(str(value))
        return "(" + ",".join(parts) + ")"


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Terms))
assert FIELD_NAMES == tuple(name for name, _ in ABI_FIELDS)
