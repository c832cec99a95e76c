"""The License Description Language: the DESIGN §4.2 example, every clause, every error kind."""

from __future__ import annotations

import base64
import hashlib

import pytest
from eth_utils import keccak

from codexfield import scopes
from codexfield.cid import cid_of
from codexfield.ldl import (
    ABI_FIELDS,
    ABI_TYPE,
    ARBITER_ON_BREACH,
    KNOWN_METERS,
    LICENSOR_AT_WILL,
    LDLError,
    Terms,
    compile_ldl,
    decompile,
)

USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CDX = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
OTHER = "0x1111111111111111111111111111111111111111"
TEXT = b"CodexField Research Licence v1: OpenRAIL-M with a medical rider.\n"
TEXT_CID = cid_of(TEXT)
# the same digest under the dag-pb codec (0x70): a valid CID, but not the raw codec
DAG_PB_CID = "b" + base64.b32encode(
    bytes([1, 0x70, 0x12, 0x20]) + hashlib.sha256(TEXT).digest()
).decode().lower().rstrip("=")

EXAMPLE = f"""license "Research metered v1" for capsule 42
price 0.002 USDC per MU, upfront 10 USDC
meter llm.tokens.1k
duration 30 days; quota 1_000_000 MU; rate 500 MU per hour
allow research, derivatives, medical; deny commercial
derivatives pay 10%
revocable by licensor with notice 7 days, by arbiter
text ipfs://{TEXT_CID}
"""

HEAD = "license for capsule 1\n"  # the smallest valid licence


def err(text: str, **kwargs) -> LDLError:
    with pytest.raises(LDLError) as info:
        compile_ldl(text, **kwargs)
    return info.value


# ---- the DESIGN example ---------------------------------------------------------------


def test_design_example__compiles_to_the_hand_computed_terms():
    lic = compile_ldl(EXAMPLE)
    assert lic.terms == Terms(
        capsule_id=42,
        payment_token=USDC,
        price_per_mu=2_000,  # 0.002 * 10**6
        upfront_fee=10_000_000,  # 10 * 10**6
        meter=bytes.fromhex("bfa50ac75419744e048abeec5224d67b9f4e5f0d8008cfc28ac659bc1bb3b978"),
        duration=30 * 24 * 3600,
        mu_quota=1_000_000,
        rate_mu=500,
        rate_period=3600,
        scope=(1 << 1) | (1 << 2) | (1 << 32),  # research, derivatives, medical
        derivative_share_bps=1_000,
        revocation=1 | 2,
        notice_period=7 * 24 * 3600,
        max_credentials=0,
        transferable=False,
        text_hash=hashlib.sha256(TEXT).digest(),
    )
    assert lic.terms.meter == keccak(b"llm.tokens.1k")
    assert lic.name == "Research metered v1"
    assert lic.meter_name == "llm.tokens.1k"
    assert lic.token_symbol == "USDC" and lic.token_decimals == 6
    assert lic.denied == scopes.BY_NAME["commercial"].mask


def test_design_example__decompiles_to_text_that_compiles_back():
    lic = compile_ldl(EXAMPLE)
    text = decompile(lic.terms, name=lic.name)
    assert compile_ldl(text).terms == lic.terms
    assert 'license "Research metered v1" for capsule 42' in text
    assert "price 0.002 USDC per MU, upfront 10 USDC" in text
    assert "revocable by licensor with notice 1 week, by arbiter" in text


def test_terms__tuple_is_in_the_binding_abi_order():
    assert [name for name, _ in ABI_FIELDS] == [
        "capsule_id", "payment_token", "price_per_mu", "upfront_fee", "meter", "duration", "mu_quota",
        "rate_mu", "rate_period", "scope", "derivative_share_bps", "revocation", "notice_period",
        "max_credentials", "transferable", "text_hash",
    ]  # fmt: skip
    assert ABI_TYPE == (
        "(uint256,address,uint256,uint256,bytes32,uint64,uint256,uint256,uint64,uint256,uint16,uint8,uint64,uint32,bool,bytes32)"
    )
    t = compile_ldl(EXAMPLE).terms
    tup = t.as_tuple()
    assert tup[0] == 42 and tup[1] == USDC and tup[2] == 2_000 and tup[14] is False
    assert Terms.from_tuple(tup) == t
    assert Terms.from_tuple(list(tup)) == t
    assert Terms.from_tuple(dict(zip([n for n, _ in ABI_FIELDS], tup))) == t
    assert Terms.from_json(t.to_json()) == t


def test_terms__json_keeps_uint256_as_strings_and_bytes_as_hex():
    j = compile_ldl(EXAMPLE).terms.to_json()
    assert j["price_per_mu"] == "2000" and j["scope"] == str((1 << 1) | (1 << 2) | (1 << 32))
    assert j["duration"] == 2_592_000 and j["transferable"] is False
    assert j["meter"] == "0x" + keccak(b"llm.tokens.1k").hex()


def test_terms__from_tuple_normalises_hex_and_lowercase_address():
    t = compile_ldl(EXAMPLE).terms
    raw = list(t.as_tuple())
    raw[1] = USDC.lower()
    raw[4] = "0x" + t.meter.hex()
    assert Terms.from_tuple(raw) == t


def test_terms__out_of_bound_field__raises():
    with pytest.raises(ValueError, match="duration"):
        Terms(capsule_id=1, duration=2**64)


# ---- clauses --------------------------------------------------------------------------


def test_defaults__smallest_licence_is_free_perpetual_unlimited_irrevocable_soulbound():
    t = compile_ldl(HEAD).terms
    assert t == Terms(capsule_id=1)
    assert t.payment_token == "0x" + "0" * 40 and t.price_per_mu == t.upfront_fee == 0
    assert t.duration == t.mu_quota == t.rate_mu == t.scope == t.revocation == t.max_credentials == 0
    assert t.transferable is False and t.text_hash == bytes(32) and t.meter == bytes(32)


def test_capsule_override__replaces_or_supplies_the_capsule():
    assert compile_ldl(HEAD, capsule_id=7).terms.capsule_id == 7
    assert compile_ldl("allow research", capsule_id=9).terms.capsule_id == 9


@pytest.mark.parametrize(
    "clause, price, upfront, token",
    [
        ("price 1 CDX per MU", 10**18, 0, CDX),
        ("price 0.000000000000000001 CDX per MU", 1, 0, CDX),
        ("price 1_000.5 USDC per MU", 1_000_500_000, 0, USDC),
        ("price 2000 units of USDC per MU", 2_000, 0, USDC),
        ("price 2000 units of 0x5fbdb2315678afecb367f032d93f642f64180aa3 per MU", 2_000, 0, USDC),
        (f"price 7 {OTHER} per MU", 7, 0, OTHER),
        ("price 3 usdc per MU", 3_000_000, 0, USDC),
        ("price 0 per MU, upfront 5 USDC", 0, 5_000_000, USDC),
        ("upfront 5 USDC", 0, 5_000_000, USDC),
        ("price 1.50 USDC per MU; upfront 2 USDC", 1_500_000, 2_000_000, USDC),
        ("free", 0, 0, "0x" + "0" * 40),
    ],
)
def test_price__amounts_tokens_and_raw_units(clause, price, upfront, token):
    t = compile_ldl(HEAD + "meter gpu.second\n" + clause).terms
    assert (t.price_per_mu, t.upfront_fee, t.payment_token) == (price, upfront, token)


def test_price__other_chains_use_their_token_list():
    t = compile_ldl(HEAD + "meter x\nprice 1 USDC per MU", chain_id=11155111).terms
    assert t.payment_token == "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"
    t = compile_ldl(HEAD + "meter x\nprice 1 USDC per MU", chain_id=84532).terms
    assert t.payment_token == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def test_price__caller_token_list_overrides_the_repository_list():
    tokens = {"chain_id": 1, "tokens": {"DAI": {"address": OTHER, "decimals": 18}}}
    t = compile_ldl(HEAD + "meter x\nprice 0.5 DAI per MU", chain_id=1, token_list=tokens).terms
    assert (t.payment_token, t.price_per_mu) == (OTHER, 5 * 10**17)
    t = compile_ldl(HEAD + "meter x\nprice 2 DAI per MU", token_list=tokens["tokens"]).terms
    assert t.price_per_mu == 2 * 10**18


@pytest.mark.parametrize(
    "clause, seconds",
    [
        ("duration 90 s", 90),
        ("duration 90 sec", 90),
        ("duration 1 second", 1),
        ("duration 5 min", 300),
        ("duration 5 minutes", 300),
        ("duration 1.5 h", 5_400),
        ("duration 2 hours", 7_200),
        ("duration 1 d", 86_400),
        ("duration 2 weeks", 1_209_600),
        ("duration 1_000 days", 86_400_000),
        ("perpetual", 0),
        ("duration perpetual", 0),
    ],
)
def test_duration__units(clause, seconds):
    assert compile_ldl(HEAD + clause).terms.duration == seconds


def test_quota_and_rate__forms():
    t = compile_ldl(HEAD + "meter x; quota 1_000 MU; rate 10 MU per 2 hours").terms
    assert (t.mu_quota, t.rate_mu, t.rate_period) == (1_000, 10, 7_200)
    t = compile_ldl(HEAD + "meter x; quota unlimited; rate 10 MU per minute").terms
    assert (t.mu_quota, t.rate_mu, t.rate_period) == (0, 10, 60)
    t = compile_ldl(HEAD + "meter x; rate 5 MU per 90 seconds").terms
    assert (t.rate_mu, t.rate_period) == (5, 90)


def test_scopes__allow_require_deny_and_raw_bits():
    t = compile_ldl(HEAD + "allow research, inference\nallow creative; require tee, attribution\ndeny commercial").terms
    assert t.scope == scopes.mask_of(["research", "inference", "creative", "tee_required", "attribution"])
    assert compile_ldl(HEAD + "require tee_required").terms.scope == scopes.TEE_REQUIRED
    assert compile_ldl(HEAD + "allow bit 50, research").terms.scope == (1 << 50) | 2


@pytest.mark.parametrize("clause, bps", [("10%", 1_000), ("0.01%", 1), ("12.34%", 1_234), ("100%", 10_000), ("0%", 0)])
def test_derivative_share__percent_to_bps(clause, bps):
    assert compile_ldl(HEAD + f"allow derivatives\nderivatives pay {clause}").terms.derivative_share_bps == bps


@pytest.mark.parametrize(
    "clause, bits, notice",
    [
        ("irrevocable", 0, 0),
        ("revocable by licensor", LICENSOR_AT_WILL, 0),
        ("revocable by arbiter", ARBITER_ON_BREACH, 0),
        ("revocable by arbiter, by licensor with notice 3 days", 3, 259_200),
        ("revocable by licensor\nnotice 12 hours", LICENSOR_AT_WILL, 43_200),
    ],
)
def test_revocation__parties_and_notice(clause, bits, notice):
    t = compile_ldl(HEAD + clause).terms
    assert (t.revocation, t.notice_period) == (bits, notice)


def test_credentials_transfer_and_text_forms(tmp_path):
    (tmp_path / "LICENSE.md").write_bytes(TEXT)
    t = compile_ldl(HEAD + 'max 100 credentials; transferable\ntext file "LICENSE.md"', base_dir=tmp_path).terms
    assert (t.max_credentials, t.transferable, t.text_hash) == (100, True, hashlib.sha256(TEXT).digest())
    digest = hashlib.sha256(b"x").digest()
    t = compile_ldl(HEAD + f"non-transferable; text 0x{digest.hex()}").terms
    assert (t.transferable, t.text_hash) == (False, digest)


def test_layout__comments_semicolons_crlf_and_blank_lines():
    text = "# a licence\r\n\r\nlicense for capsule 3 # trailing\r\n;; allow research ;\r\n\r\n"
    t = compile_ldl(text).terms
    assert (t.capsule_id, t.scope) == (3, 2)


def test_meter__raw_hash():
    h = keccak(b"custom.meter")
    lic = compile_ldl(HEAD + f"meter 0x{h.hex()}")
    assert lic.terms.meter == h and lic.meter_name is None


# ---- decompile ------------------------------------------------------------------------


def test_decompile__unknown_token_is_written_in_raw_units():
    t = Terms(capsule_id=5, payment_token=OTHER, price_per_mu=2_000, upfront_fee=9, meter=keccak(b"gpu.second"))
    text = decompile(t)
    assert f"price 2000 units of {OTHER} per MU, upfront 9 units of {OTHER}" in text
    assert "meter gpu.second" in text
    assert compile_ldl(text).terms == t


def test_decompile__unknown_meter_is_written_as_its_hash_or_by_the_given_name():
    h = keccak(b"my.meter")
    t = Terms(capsule_id=5, meter=h)
    assert f"meter 0x{h.hex()}" in decompile(t)
    assert "meter my.meter" in decompile(t, meter_name="my.meter")
    with pytest.raises(ValueError, match="does not hash"):
        decompile(t, meter_name="other.meter")


def test_decompile__every_known_meter_is_recognised():
    for name in KNOWN_METERS:
        assert f"meter {name}\n" in decompile(Terms(capsule_id=1, meter=keccak(text=name)))


def test_decompile__canonical_spelling_of_defaults():
    text = decompile(Terms(capsule_id=1))
    assert text == "license for capsule 1\nfree\nperpetual\nquota unlimited\nirrevocable\nnon-transferable\n"


# ---- errors ---------------------------------------------------------------------------


def test_error__unknown_scope__suggests_the_closest_name():
    e = err("license for capsule 1\nmeter x\nallow comercial")
    assert str(e).startswith("line 3, col 7: unknown scope 'comercial' — did you mean 'commercial'?")
    assert (e.line, e.column) == (3, 7)
    assert e.render("f.ldl").splitlines()[1:] == ["  allow comercial", "        ^"]


def test_error__unknown_clause__suggests_and_lists_clause_keywords():
    e = err(HEAD + "prise 1 USDC per MU")
    assert (e.line, e.column) == (2, 1)
    assert "unknown clause 'prise' — did you mean 'price'?" in e.message
    assert "license, price, upfront" in e.message


def test_error__two_clauses_on_one_line__asks_for_a_separator():
    e = err(HEAD + "duration 30 days quota 5 MU")
    assert (e.line, e.column) == (2, 18)
    assert "expected ';' or a new line" in e.message


def test_error__incomplete_clause__lists_what_may_follow():
    e = err(HEAD + "allow research,")
    assert (e.line, e.column) == (2, 16)
    assert "unexpected end of line; expected" in e.message and "a scope name" in e.message
    e = err(HEAD + "price 3 USDC per MU, by")
    assert "expected 'upfront'" in e.message


def test_error__unterminated_string_and_stray_characters():
    e = err('license "abc\nallow research')
    assert (e.line, e.column) == (1, 9) and "unterminated string" in e.message
    e = err(HEAD + "allow research @")
    assert (e.line, e.column) == (2, 16) and "'@'" in e.message
    e = err("\x00")
    assert "U+0000" in e.message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("allow tee", "'tee' is a requirement, not a right: write 'require tee'"),
        ("require research", "'research' is a usage right: write 'allow research'"),
        ("require medical", "'medical' is a scenario tag: write 'allow medical'"),
        ("require tea", "unknown scope 'tea' — did you mean 'tee'?"),
    ],
)
def test_error__scope_in_the_wrong_list(text, fragment):
    assert fragment in err(HEAD + text).message


def test_error__allow_and_deny_the_same_scope():
    e = err(HEAD + "allow research, medical\ndeny commercial, medical")
    assert (e.line, e.column) == (3, 18)
    assert "scope 'medical' is allowed on line 2 and denied here" in e.message


def test_error__quota_below_rate():
    e = err(HEAD + "meter x\nquota 100 MU\nrate 500 MU per hour")
    assert (e.line, e.column) == (3, 7)
    assert "the quota (100 MU) is below the rate (500 MU per hour)" in e.message


def test_error__derivative_share_without_derivatives():
    e = err(HEAD + "allow research\nderivatives pay 10%")
    assert (e.line, e.column) == (3, 1) and "add 'allow derivatives'" in e.message


def test_error__unknown_token_symbol__lists_the_known_ones():
    e = err(HEAD + "meter x\nprice 1 USDT per MU")
    assert (e.line, e.column) == (3, 9)
    assert "unknown token 'USDT' — did you mean 'USDC'? (known on chain 31337: CDX, USDC)" in e.message
    e = err(HEAD + "meter x\nprice 1 USDC per MU", chain_id=999)
    assert "chain 999 has no token list" in e.message and "units of 0x" in e.message


def test_error__notice_without_licensor_revocation():
    e = err(HEAD + "revocable by arbiter\nnotice 7 days")
    assert (e.line, e.column) == (3, 8) and "a notice period applies only to revocation by the licensor" in e.message
    assert "notice period" in err(HEAD + "notice 1 day").message


def test_error__too_many_decimals():
    e = err(HEAD + "meter x\nprice 0.0000001 USDC per MU")
    assert (e.line, e.column) == (3, 7)
    assert e.message == "USDC has 6 decimals: 0.0000001 USDC has more (the smallest amount is 0.000001 USDC)"
    assert "whole number" in err(HEAD + f"meter x\nprice 1.5 units of {OTHER} per MU").message
    assert "more than 2 decimals" in err(HEAD + "allow derivatives; derivatives pay 10.005%").message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("duration 213503982334602 days", "does not fit a uint64"),
        (f"duration {2**64} s", "does not fit a uint64"),
        (f"meter x; rate 1 MU per {2**64} s", "does not fit a uint64"),
        (f"revocable by licensor with notice {2**64} s", "does not fit a uint64"),
        (f"max {2**32} credentials", "must fit a uint32"),
        (f"meter x; quota {2**256} MU", "must fit a uint256"),
        (f"meter x; price {2**256} units of USDC per MU", "does not fit a uint256"),
        (f"meter x; price {2**256 // 10**6 + 1} USDC per MU", "does not fit a uint256"),
        ("allow bit 256", "0..255"),
        ("meter x; price " + "9" * 300 + " USDC per MU", "far too large"),
        ("allow derivatives; derivatives pay 100.01%", "above 100%"),
    ],
)
def test_error__values_out_of_bounds(text, fragment):
    assert fragment in err(HEAD + text).message


def test_error__capsule_id_overflow_and_missing_capsule():
    assert "must fit a uint256" in err(f"license for capsule {2**256}").message
    e = err("allow research")
    assert (e.line, e.column) == (1, 1) and "which capsule?" in e.message and "--capsule" in e.message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("meter x; quota 1.5 MU", "quota must be a whole number"),
        ("duration 1.5 s", "not a whole number of seconds"),
        ("duration 3 dayz", "unknown time unit 'dayz' — did you mean 'days'?"),
        ("duration 2 months", "write days instead"),
        ("duration 0 days", "write 'perpetual'"),
        ("meter x; quota 0 MU", "quota unlimited"),
        ("meter x; rate 0 MU per hour", "omit the rate clause"),
        ("max 0 credentials", "omit the clause for unlimited"),
    ],
)
def test_error__bad_numbers_and_units(text, fragment):
    assert fragment in err(HEAD + text).message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("meter x\nprice 1 USDC per MU\nprice 2 USDC per MU", "duplicate 'price' clause (the first is on line 3)"),
        ("perpetual\nduration 3 days", "duplicate 'duration/perpetual' clause"),
        ("irrevocable\nrevocable by arbiter", "duplicate 'irrevocable/revocable' clause"),
        ("revocable by arbiter, by arbiter", "'by arbiter' is listed twice"),
        ("transferable; non-transferable", "duplicate 'transferable/non-transferable' clause"),
        ("revocable by licensor with notice 1 day\nnotice 2 days", "duplicate 'notice' clause"),
        ('license "again"', "duplicate 'license' clause"),
    ],
)
def test_error__conflicting_or_duplicate_clauses(text, fragment):
    assert fragment in err(HEAD + text).message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("meter x; price 1 USDC per MU, upfront 1 CDX", "different tokens"),
        ("meter x; price 1 per MU", "names no token"),
        ("price 1 USDC per MU", "add a 'meter' clause"),
        ("quota 10 MU", "add a 'meter' clause"),
        ("rate 10 MU per hour", "add a 'meter' clause"),
        ("free; upfront 1 USDC", "'free' conflicts"),
        (f"meter x; price 1 units of 0x{'0' * 40} per MU", "zero address"),
        ("meter x; price 1 0xabc per MU", "an address has 40 hex digits after 0x, this has 3"),
        ("meter x; price 1 0x5FbDB2315678afecb367f032d93F642f64180aA3 per MU", "bad EIP-55 checksum"),
        (f"meter 0x{'00' * 32}", "the meter hash is zero"),
        ("meter 0x1234", "64 hex digits"),
        ("text 0xabcd", "64 hex digits"),
        ("text ipfs://bafkreibad", "not valid base32"),
        (f"text ipfs://{DAG_PB_CID}", "not a CIDv1 with the raw codec"),
        ("text ipfs://Qmabc", "must start with 'b'"),
        ('text file "missing.md"', "cannot read the licence text file"),
    ],
)
def test_error__semantic_problems_with_tokens_meters_and_texts(text, fragment, tmp_path):
    assert fragment in err(HEAD + text, base_dir=tmp_path).message


def test_error__bad_escape_in_the_name():
    e = err(r'license "bad \q escape" for capsule 1')
    assert (e.line, e.column) == (1, 9) and "bad escape" in e.message


def test_docs__scope_table_is_rendered_from_the_published_table():
    from pathlib import Path

    from codexfield.ldl.reference import scope_table_markdown

    docs = (Path(__file__).resolve().parents[2] / "docs/ldl.md").read_text()
    assert scope_table_markdown() in docs, "regenerate the table: python -m codexfield.ldl.reference"
