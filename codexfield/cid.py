"""CIDv1 for capsule manifests: raw codec (0x55), sha2-256 multihash, multibase base32 (`b...`).

The same encoding is derived on chain by `CapsuleRegistry.tokenURI` / `cid`; tests check both
against each other and against an independent implementation (py-cid).
"""

from __future__ import annotations

import base64
import hashlib

CID_V1 = 0x01
RAW = 0x55
SHA2_256 = 0x12
PREFIX = bytes([CID_V1, RAW, SHA2_256, 0x20])


class CIDError(ValueError):
    """A string that is not a CIDv1 raw/sha2-256 base32 CID."""


def cid_from_digest(digest: bytes) -> str:
    """The CIDv1 string of a SHA-256 digest."""
    if len(digest) != 32:
        raise CIDError(f"a sha2-256 digest has 32 bytes, got {len(digest)}")
    return "b" + base64.b32encode(PREFIX + digest).decode().lower().rstrip("=")


def cid_of(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256) of `data`."""
    return cid_from_digest(hashlib.sha256(data).digest())


def digest_from_cid(cid: str) -> bytes:
    """The SHA-256 digest inside a CIDv1 raw/sha2-256 base32 string (accepts an `ipfs://` prefix)."""
    text = cid.removeprefix("ipfs://")
    if not text.startswith("b"):
        raise CIDError(f"{cid!r} is not a base32 CIDv1 (it must start with 'b', e.g. bafkrei...)")
    body = text[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except Exception as exc:  # binascii.Error
        raise CIDError(f"{cid!r} is not valid base32: {exc}") from None
    if len(raw) != 36 or raw[:4] != PREFIX:
        raise CIDError(f"{cid!r} is not a CIDv1 with the raw codec and a sha2-256 digest")
    return raw[4:]
