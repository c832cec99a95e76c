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


@pytest.mark.parametrize("params, needle", [
    ({"limit": 0}, "limit"), ({"limit": 1000}, "limit"), ({"offset": -1}, "offset"), ({"kind": "banana"}, "kind"),
    ({"scope": "nope"}, "unknown scope"), ({"creator": "xyz"}, "creator"), ({"min_rating": 9}, "min_rating"),
    ({"max_price": "cheap"}, "max_price"), ({"sort": "random"}, "sort"), ({"q": "!!!"}, "q:"),
])
def test_search__bad_parameters__400_with_message(client, params, needle):
    r = client.get("/api/capsules", params=params)
    assert r.status_code == 400 and needle in r.json()["error"]


def test_detail__bad_or_unknown_id(client):
    r = client.get("/api/capsules/42")
    assert r.status_code == 400 and "CAIP-19" in r.json()["error"]
    r = client.get(f"/api/capsules/{capsule_id(999)}")
    assert r.status_code == 404 and "no capsule" in r.json()["detail"]
    assert client.get(f"/api/lineage/{capsule_id(999)}").status_code == 404
    assert client.get(f"/api/lineage/{capsule_id(1)}", params={"depth": 0}).status_code == 400
