"""The HTTP API over a populated catalog: search and filters, detail, lineage (recursive CTEs),
rankings, nodes, status, OpenAPI, and clear 4xx answers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from codexfield.indexer.api import create_app

from catalog import populate
from synth import BOB, CHAIN, capsule_id


@pytest.fixture
def client(engine, tmp_path):
    populate(engine, tmp_path)
    return TestClient(create_app(engine))


def ids(resp):
    assert resp.status_code == 200, resp.text
    return [c["id"] for c in resp.json()["items"]]


def test_search__full_text_and_default_ranking(client):
    assert set(ids(client.get("/api/capsules", params={"q": "sentiment"}))) == {capsule_id(2), capsule_id(3)}
    everything = ids(client.get("/api/capsules"))
    assert capsule_id(4) not in everything and capsule_id(5) not in everything  # flagged + its derivative
    assert everything[0] == capsule_id(2)  # audited, used, rated 5


def test_search__filters(client):
    assert ids(client.get("/api/capsules", params={"kind": "dataset"})) == [capsule_id(1)]
    assert set(ids(client.get("/api/capsules", params={"creator": BOB}))) == {capsule_id(3)}
    assert set(ids(client.get("/api/capsules", params={"creator": f"did:ethr:0x7a69:{BOB}"}))) == {capsule_id(3)}
    assert ids(client.get("/api/capsules", params={"scope": ["research", "inference"]})) == [capsule_id(2)]
    assert ids(client.get("/api/capsules", params={"scope": "commercial"})) == [capsule_id(3)]
    assert ids(client.get("/api/capsules", params={"max_price": 10})) == [capsule_id(2)]
    assert ids(client.get("/api/capsules", params={"min_rating": 4})) == [capsule_id(2)]
    assert ids(client.get("/api/capsules", params={"audited": "true"})) == [capsule_id(2)]
    moderated = ids(client.get("/api/capsules", params={"include_moderated": "true", "kind": 4}))
    assert set(moderated) == {capsule_id(4), capsule_id(5)}


def test_search__pagination(client):
    first = client.get("/api/capsules", params={"limit": 2, "sort": "newest"}).json()
    second = client.get("/api/capsules", params={"limit": 2, "offset": 2, "sort": "newest"}).json()
    assert first["total"] == 3 and first["next_offset"] == 2 and second["next_offset"] is None
    assert [c["id"] for c in first["items"] + second["items"]] == [capsule_id(3), capsule_id(2), capsule_id(1)]


def test_detail__lineage_terms_usage_royalties(client):
    r = client.get(f"/api/capsules/{capsule_id(3)}")
    assert r.status_code == 200
    c = r.json()
    assert c["manifest"]["name"] == "Sentiment model distilled" and c["creator"] == BOB
    assert c["terms"][0]["price_per_mu"] == "50" and c["terms"][0]["scopes"] == ["commercial", "inference"]
    assert c["usage"]["calls"] == 10 and c["usage"]["failures"] == 5
    assert c["royalties"][0]["credited_total"] == "1000" and c["royalties"][0]["claimed_total"] == "600"
    flows = {(f["source"], f["target"]): f["amount"] for f in c["royalty_flows"]}
    assert flows[(capsule_id(3), capsule_id(2))] == "300" and flows[(capsule_id(3), capsule_id(1))] == "100"
    assert {a["id"]: a["depth"] for a in c["lineage"]["ancestors"]} == {capsule_id(2): 1, capsule_id(1): 1}


def test_lineage__ancestors_and_descendants_with_depth(client):
    down = client.get(f"/api/lineage/{capsule_id(1)}").json()
    assert {d["id"]: d["depth"] for d in down["descendants"]} == {capsule_id(2): 1, capsule_id(3): 1}
    assert len(down["edges"]) == 3 and down["ancestors"] == []
    one = client.get(f"/api/lineage/{capsule_id(3)}", params={"depth": 1}).json()
    assert {a["id"] for a in one["ancestors"]} == {capsule_id(1), capsule_id(2)}


def test_rankings_nodes_status_openapi(client):
    ranks = client.get("/api/rankings").json()["items"]
    assert [r["score"] for r in ranks] == sorted((r["score"] for r in ranks), reverse=True)
    assert client.get("/api/nodes").json()["total"] == 0
    s = client.get("/api/status").json()
    assert s["chains"][0]["chain_id"] == CHAIN and s["capsules"] == 5 and s["manifests"] == {"ok": 5}
    doc = client.get("/openapi.json").json()
    assert {"/api/capsules", "/api/rankings", "/api/status", "/api/nodes"} <= set(doc["paths"])
    assert client.get("/").status_code == 200 and "lineage-graph" in client.get("/").text


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"kind": "banana"}, "kind"),
        ({"scope": "nope"}, "unknown scope"),
        ({"creator": "xyz"}, "creator"),
        ({"min_rating": 9}, "min_rating"),
        ({"max_price": "cheap"}, "max_price"),
        ({"sort": "random"}, "sort"),
        ({"q": "!!!"}, "q:"),
    ],
)
def test_search__bad_parameters__400_with_message(client, params, needle):
    r = client.get("/api/capsules", params=params)
    assert r.status_code == 400 and needle in r.json()["error"]


def test_detail__bad_or_unknown_id(client):
    r = client.get("/api/capsules/42")
    assert r.status_code == 400 and "CAIP-19" in r.json()["error"]
    r = client.get(f"/api/capsules/{capsule_id(999)}")
    assert r.status_code == 404 and "no capsule" in r.json()["error"]
    assert client.get(f"/api/lineage/{capsule_id(999)}").status_code == 404
    assert client.get(f"/api/lineage/{capsule_id(1)}", params={"depth": 0}).status_code == 400


@pytest.mark.parametrize(
    "path, params, needle",
    [
        ("/api/capsules", {"offset": 2**63}, "offset"),
        ("/api/capsules", {"chain_id": 2**63}, "chain_id"),
        ("/api/capsules", {"max_price": 2**256}, "max_price"),
        ("/api/rankings", {"offset": 2**63}, "offset"),
        ("/api/nodes", {"offset": 2**64}, "offset"),
        ("/api/capsules", {"offset": 10**400}, "offset"),
    ],
)
def test_out_of_range_numbers__400_not_500(client, path, params, needle):
    r = client.get(path, params=params)
    assert r.status_code == 400 and needle in r.json()["error"] and set(r.json()) == {"error"}


def test_largest_accepted_numbers__answer_200(client):
    assert client.get("/api/capsules", params={"offset": 2**63 - 1}).json()["items"] == []
    assert client.get("/api/capsules", params={"chain_id": 2**63 - 1}).json()["total"] == 0
    priced = client.get("/api/capsules", params={"max_price": 10**6}).json()["total"]  # capsules with active terms
    assert priced > 0 and client.get("/api/capsules", params={"max_price": 2**256 - 1}).json()["total"] == priced
    assert client.get("/api/nodes", params={"offset": 2**63 - 1}).status_code == 200


def test_capsule_id__registry_in_any_case__same_capsule(client):
    chain_part, registry, token = capsule_id(3).split("/")
    for variant in (registry.lower(), "erc721:0x" + registry.split("0x")[1].upper()):
        r = client.get(f"/api/capsules/{chain_part}/{variant}/{token}")
        assert r.status_code == 200 and r.json()["id"] == capsule_id(3)
        assert client.get(f"/api/lineage/{chain_part}/{variant}/{token}").json()["id"] == capsule_id(3)


def test_errors__uniform_error_bodies(client):
    for url, code in (
        (f"/api/capsules/{capsule_id(999)}", 404),
        ("/api/nowhere", 404),
        ("/api/capsules/x", 400),
        (f"/api/lineage/{capsule_id(999)}", 404),
    ):
        r = client.get(url)
        assert r.status_code == code and set(r.json()) == {"error"} and r.json()["error"], url


def test_openapi__typed_responses_and_the_statuses_sent(client):
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for op in ops.values():
            responses = op["responses"]
            assert "422" not in responses, path
            ok = responses["200"]["content"]["application/json"]["schema"]
            assert "$ref" in ok, (path, ok)  # a named model, not an untyped object
            has_params = bool(op.get("parameters"))
            assert ("400" in responses) == has_params, path
            assert ("404" in responses) == ("{capsule_id" in path), path
            for code in ("400", "404"):
                if code in responses:
                    assert responses[code]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert set(doc["components"]["schemas"]["Error"]["properties"]) == {"error"}


def test_address_book_in_lower_case__ids_checksummed__found_by_any_case(engine):
    from codexfield.indexer.abi import DecodedEvent, EventDecoder
    from codexfield.indexer.ingest import Indexer

    from synth import ADDR, FakeSource, minted

    lower = {k: v.lower() for k, v in ADDR.items()}
    feed_idx = Indexer(engine, FakeSource(), CHAIN, lower, decoder=EventDecoder(lower, abis={}), start_block=1)
    assert feed_idx.addresses == ADDR
    h = "0x" + "ab" * 32
    contract, name, args = minted(7)
    feed_idx.apply(
        [
            DecodedEvent(
                contract=contract,
                name=name,
                address=ADDR[contract],
                block_number=1,
                block_hash=h,
                log_index=0,
                tx_hash="0x" + "00" * 32,
                args=args,
            )
        ],
        {1: {"hash": h, "parentHash": "0x" + "00" * 32, "timestamp": 10}},
        1,
        1,
        1,
    )
    c = TestClient(create_app(engine))
    assert c.get(f"/api/capsules/{capsule_id(7).lower()}").json()["id"] == capsule_id(7)


# --- amounts in token units, terms as LDL, manifest cards (issue 14) ------------------------

LISTED_USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # codexfield/tokenlists/31337.json


@pytest.fixture
def carded(engine, tmp_path):
    from catalog import populate_cards

    populate(engine, tmp_path)
    populate_cards(engine, tmp_path, LISTED_USDC)
    return TestClient(create_app(engine))


def test_detail__listed_token__amounts_in_token_units_and_terms_as_ldl(carded):
    from codexfield.ldl import Terms, compile_ldl

    t = carded.get(f"/api/capsules/{capsule_id(6)}").json()["terms"][0]
    assert t["price_per_mu"] == "2000" and t["price_per_mu_text"] == "0.002 USDC"
    assert t["upfront_fee"] == "10000000" and t["upfront_fee_text"] == "10 USDC"
    assert t["token"] == {"address": LISTED_USDC, "symbol": "USDC", "decimals": 6, "listed": True, "source": "list"}
    assert t["ldl"].splitlines() == [
        "license for capsule 6",
        "price 0.002 USDC per MU, upfront 10 USDC",
        "meter gpu.second",
        "duration 30 days",
        "quota unlimited",
        "allow research, derivatives, inference",
        "derivatives pay 10%",
        "revocable by licensor, by arbiter",
        "non-transferable",
    ]
    # the text is the terms: compiled back, it is field for field the indexed row
    back = compile_ldl(t["ldl"], chain_id=CHAIN).terms
    assert back == Terms(
        capsule_id=6,
        payment_token=LISTED_USDC,
        price_per_mu=2000,
        upfront_fee=10_000_000,
        meter=t["meter"],
        duration=30 * 86400,
        scope=int(t["scope"]),
        derivative_share_bps=1000,
        revocation=3,
    )
    found = carded.get("/api/capsules", params={"q": "Reviews 2024"}).json()["items"]
    assert [(c["id"], c["min_price_text"]) for c in found] == [(capsule_id(7), "0.002 USDC / MU")]


def test_detail__unknown_token__raw_amount_and_short_address_never_a_unit(carded):
    c = carded.get(f"/api/capsules/{capsule_id(3)}").json()
    t = c["terms"][0]
    assert t["token"]["symbol"] is None and t["token"]["decimals"] is None and not t["token"]["listed"]
    assert t["price_per_mu_text"] == "50 units of 0xaAaA…aaAa"
    assert "price 50 units of 0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa per MU" in t["ldl"]
    assert c["royalties"][0]["credited_total_text"] == "1000 units of 0xaAaA…aaAa"
    assert sorted(f["amount_text"] for f in c["royalty_flows"]) == [
        f"{n} units of 0xaAaA…aaAa" for n in ("100", "1000", "300", "600")
    ]
    assert c["usage"]["license_amount_text"] == "50 units of 0xaAaA…aaAa"
    assert carded.get(f"/api/capsules/{capsule_id(1)}").json()["usage"]["license_amount_text"] == "0 raw units"


def test_detail__model_and_dataset_cards__typed_and_verbatim(carded):
    from catalog import HOSTILE

    m = carded.get(f"/api/capsules/{capsule_id(6)}").json()["manifest"]
    card = m["card"]
    assert card["version"] == "2.1.0" and card["files"] == 1 and card["size_bytes"] == 2048
    assert card["license"]["spdx"] == "Apache-2.0" and card["license"]["terms_id"] == 3
    mc = card["model_card"]
    assert mc["task"] == "text-classification" and mc["parameters"] == 66_000_000 and mc["language"] == ["en", "pt-BR"]
    assert mc["base_model"] == "2" and mc["training_data"] == [
        "1",
        "https://example.org/reviews",
        "javascript:window.__pwned=1",
    ]
    assert mc["metrics"][0] == {"name": "accuracy", "value": 0.913, "dataset": "reviews", "split": "test"}
    assert mc["intended_use"].endswith(HOSTILE) and mc["extensions"] == {"x-html": HOSTILE}  # data, not markup
    assert card["dataset_card"] is None and m["name"] == "Evil " + HOSTILE
    dc = carded.get(f"/api/capsules/{capsule_id(7)}").json()["manifest"]["card"]["dataset_card"]
    assert (dc["records"], dc["size_bytes"], dc["format"], dc["personal_data"]) == (120_000, 48_000_000, "jsonl", False)
    assert dc["source"] == "Public product pages, 2024." and dc["sources"] == [] and dc["language"] == ["en"]
    doc = carded.get("/openapi.json").json()["components"]["schemas"]
    assert {"ModelCard", "DatasetCard", "ManifestCard", "TokenInfo"} <= set(doc)
    assert doc["ManifestInfo"]["properties"]["card"]["anyOf"][0]["$ref"].endswith("/ManifestCard")


def test_page__served_with_a_content_security_policy(client):
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp and "object-src 'none'" in csp and r.headers["x-content-type-options"] == "nosniff"
    )
