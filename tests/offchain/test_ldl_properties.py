"""Properties of the LDL: compile(decompile(t)) == t for every valid Terms; any input either
compiles or raises LDLError (never anything else)."""

from __future__ import annotations

from eth_utils import keccak, to_checksum_address
from hypothesis import assume, given
from hypothesis import strategies as st

from codexfield import scopes
from codexfield.ldl import (
    ARBITER_ON_BREACH,
    CLAUSE_KEYWORDS,
    KNOWN_METERS,
    LICENSOR_AT_WILL,
    LDLError,
    Terms,
    compile_ldl,
    decompile,
    load_token_list,
)
from codexfield.ldl.terms import UINT32_MAX, UINT64_MAX, UINT256_MAX, ZERO_ADDRESS

LOCAL = load_token_list(31337)

uint256 = st.one_of(st.integers(0, UINT256_MAX), st.integers(0, 10**9))
uint64 = st.one_of(st.integers(0, UINT64_MAX), st.integers(0, 10**7), st.sampled_from([60, 3600, 86400, 604800]))
random_address = (
    st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b)).filter(lambda a: a != ZERO_ADDRESS)
)
token_address = st.one_of(st.sampled_from([t.address for t in LOCAL.by_symbol.values()]), random_address)
meter_names = st.one_of(
    st.sampled_from(KNOWN_METERS),
    st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z0-9_]{1,6}){0,3}", fullmatch=True),
)
named_scopes = st.lists(st.sampled_from(scopes.SCOPES), unique=True).map(lambda ss: sum(s.mask for s in ss))


@st.composite
def valid_terms(draw) -> tuple[Terms, str | None, str | None]:
    """(terms, licence name, meter name): consistent rate/quota, a derivative share only with
    DERIVATIVES, a notice only with licensor revocation, a meter whenever MU are counted."""
    price = draw(uint256)
    upfront = draw(uint256)
    if price or upfront or draw(st.booleans()):
        token = draw(token_address)
    else:
        token = ZERO_ADDRESS
    rate_mu, rate_period = 0, 0
    if draw(st.booleans()):
        rate_mu, rate_period = draw(st.integers(1, UINT256_MAX)), draw(st.integers(1, UINT64_MAX))
    quota = draw(st.one_of(st.just(0), st.integers(max(rate_mu, 1), UINT256_MAX)))
    meter_name = None
    meter = bytes(32)
    counted = price or quota or rate_mu
    kind = draw(st.sampled_from(["name", "hash", "none"]))
    if kind == "name" or (kind == "none" and counted):
        meter_name = draw(meter_names)
        meter = keccak(text=meter_name)
    elif kind == "hash":
        meter = draw(st.binary(min_size=32, max_size=32).filter(any))
    scope = draw(named_scopes)
    share = draw(st.integers(0, 10_000)) if scope & scopes.DERIVATIVES else 0
    revocation = draw(st.integers(0, LICENSOR_AT_WILL | ARBITER_ON_BREACH))
    notice = draw(uint64) if revocation & LICENSOR_AT_WILL else 0
    terms = Terms(
        capsule_id=draw(uint256),
        payment_token=token,
        price_per_mu=price,
        upfront_fee=upfront,
        meter=meter,
        duration=draw(uint64),
        mu_quota=quota,
        rate_mu=rate_mu,
        rate_period=rate_period,
        scope=scope,
        derivative_share_bps=share,
        revocation=revocation,
        notice_period=notice,
        max_credentials=draw(st.integers(0, UINT32_MAX)),
        transferable=draw(st.booleans()),
        text_hash=draw(st.one_of(st.just(bytes(32)), st.binary(min_size=32, max_size=32))),
    )
    name = draw(st.one_of(st.none(), st.text(max_size=40)))
    return terms, name, meter_name


@given(valid_terms())
def test_round_trip__compile_of_decompile_is_the_identity(case):
    terms, name, meter_name = case
    text = decompile(terms, name=name, meter_name=meter_name)
    lic = compile_ldl(text)
    assert lic.terms == terms
    assert lic.name == (name or "")
    if meter_name is not None:
        assert lic.meter_name == meter_name


@given(valid_terms())
def test_round_trip__through_the_abi_tuple_and_json(case):
    terms, _, _ = case
    assert Terms.from_tuple(terms.as_tuple()) == terms
    assert Terms.from_json(terms.to_json()) == terms


@given(valid_terms())
def test_decompile__is_a_fixed_point(case):
    terms, name, meter_name = case
    text = decompile(terms, name=name, meter_name=meter_name)
    lic = compile_ldl(text)
    assert decompile(lic.terms, name=lic.name, meter_name=lic.meter_name) == text


def _compiles_or_ldl_error(text: str) -> None:
    try:
        compile_ldl(text)
    except LDLError as exc:
        assert exc.line >= 1 and exc.column >= 1 and exc.message


WORDS = list(CLAUSE_KEYWORDS) + [
    '"name"', "for", "capsule", "per", "MU", "units", "of", "by", "licensor", "arbiter", "with", "pay", "%",
    "credentials", "unlimited", "bit", "file", "USDC", "CDX", "usdt", "research", "derivatives", "comercial", "tee",
    "days", "h", "months", "llm.tokens.1k", "0", "1", "1.5", "0.0000001", "1_000", "9" * 90, "0x", "0x" + "ab" * 20,
    "0x" + "cd" * 32, "ipfs://bafkrei", ",", ";", "\n", "#", '"', "\t", "\r\n", "\u2028",
]  # fmt: skip


@given(st.lists(st.sampled_from(WORDS), max_size=40))
def test_fuzz__clause_soup_compiles_or_raises_ldl_error(words):
    _compiles_or_ldl_error(" ".join(words))


@given(st.text(max_size=300))
def test_fuzz__random_text_compiles_or_raises_ldl_error(text):
    _compiles_or_ldl_error(text)


@given(st.binary(max_size=300))
def test_fuzz__random_bytes_decoded_leniently_compile_or_raise_ldl_error(data):
    _compiles_or_ldl_error(data.decode("utf-8", errors="replace"))


@given(valid_terms(), st.integers(0, 200), st.text(min_size=1, max_size=3))
def test_fuzz__mutated_valid_text_compiles_or_raises_ldl_error(case, pos, junk):
    terms, name, meter_name = case
    text = decompile(terms, name=name, meter_name=meter_name)
    pos = min(pos, len(text))
    assume(junk)
    _compiles_or_ldl_error(text[:pos] + junk + text[pos:])
