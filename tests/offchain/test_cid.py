"""CIDv1 (raw, sha2-256, base32) helpers against an independent implementation (py-cid)."""

from __future__ import annotations

import hashlib

import cid as pycid  # py-cid: independent CID implementation
import multihash  # pymultihash, py-cid's multihash dependency
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexfield.cid import CIDError, cid_from_digest, cid_of, digest_from_cid

digests = st.binary(min_size=32, max_size=32)


def pycid_raw_sha256(digest: bytes) -> str:
    """The reference CID string: py-cid builds it from a multihash; `.encode("base32")` returns
    *bytes* (multibase prefix `b` + lower-case RFC 4648 base32 without padding), so the only
    normalisation needed is bytes -> str. Its default `.encode()` is base58btc (`z...`), which is
    why the base is named explicitly."""
    mh = multihash.Multihash(multihash.Func.sha2_256, digest).encode()
    return pycid.make_cid(1, "raw", mh).encode("base32").decode("ascii")


@given(digests)
def test_cid_from_digest__any_digest__equals_py_cid(digest):
    assert cid_from_digest(digest) == pycid_raw_sha256(digest)


@given(digests)
def test_digest_from_cid__round_trip__returns_digest(digest):
    text = cid_from_digest(digest)
    assert digest_from_cid(text) == digest
    assert digest_from_cid("ipfs://" + text) == digest


@given(st.binary(max_size=512))
def test_cid_of__bytes__is_cid_of_their_sha256_and_parses_in_py_cid(data):
    text = cid_of(data)
    parsed = pycid.from_string(text)
    assert parsed.version == 1 and parsed.codec == "raw"
    assert multihash.decode(parsed.multihash).digest == hashlib.sha256(data).digest()
    assert text == cid_from_digest(hashlib.sha256(data).digest())


def test_cid_of__empty_bytes__is_the_well_known_empty_raw_cid():
    # The raw-leaf CID of the empty file, as `ipfs add --cid-version=1 --raw-leaves` prints it.
    assert cid_of(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_cid_from_digest__wrong_length__raises():
    with pytest.raises(CIDError, match="32 bytes"):
        cid_from_digest(b"\x00" * 31)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "base32 CIDv1"),  # CIDv0 (base58)
        ("zb2rhZhfZ71VE6u6BX78cmaNKsLmDde9EYyrY9dsRVLJWr9oW", "base32 CIDv1"),  # base58btc CIDv1
        ("b!!!!", "not valid base32"),
    ],
)
def test_digest_from_cid__not_base32_cidv1__raises_readable_error(text, reason):
    with pytest.raises(CIDError, match=reason):
        digest_from_cid(text)


def test_digest_from_cid__dag_pb_codec__raises():
    mh = multihash.Multihash(multihash.Func.sha2_256, bytes(32)).encode()
    dag_pb = pycid.make_cid(1, "dag-pb", mh).encode("base32").decode()
    with pytest.raises(CIDError, match="raw codec"):
        digest_from_cid(dag_pb)
