"""Token symbols and decimals for the catalog (`codexfield.indexer.tokens`): the token list first,
else one eth_call of symbol()/decimals() per token, cached; unknown tokens stay raw amounts.
Also the 0005 migration's requeue of manifests fetched before cards were stored."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from codexfield import amounts
from codexfield.indexer import models as m
from codexfield.indexer.api import create_app
from codexfield.indexer.ingest import Web3Source
from codexfield.indexer.tokens import TokenWorker

from catalog import populate, populate_cards
from synth import ALICE, CHAIN, Feed, capsule_id, terms

LISTED_USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _rows(engine):
    with engine.connect() as conn:
        return {r.address: r for r in conn.execute(select(m.Token.__table__))}


def test_real_erc20__resolved_once_by_eth_call__shown_in_its_units_as_unlisted(engine, tmp_path, deploy_token, chain):
    token = deploy_token("USDT", 6)
    populate(engine, tmp_path)
    populate_cards(engine, tmp_path, str(token.address))
    listed = terms(20, 1, price=7)  # terms of capsule 1 in a listed token: no call needed
    listed[2]["payment_token"] = LISTED_USDC
    Feed(engine).block_of([listed])
    worker = TokenWorker(engine, Web3Source(chain.provider.web3), CHAIN)
    # the synthetic 0xaaaa… token has no code: it answers nothing, so it stays unknown
    assert worker.process() == {"chain": 1, "unknown": 1, "list": 1}
    rows = _rows(engine)
    assert (rows[str(token.address)].symbol, rows[str(token.address)].decimals) == ("USDT", 6)
    assert worker.pending() == [] and worker.process() == {}  # one call per token, ever
    c = TestClient(create_app(engine))
    t = c.get(f"/api/capsules/{capsule_id(6)}").json()["terms"][0]
    assert t["price_per_mu_text"] == "0.002 USDT" and t["upfront_fee_text"] == "10 USDT"
    assert t["token"] == {
        "address": str(token.address),
        "symbol": "USDT",
        "decimals": 6,
        "listed": False,
        "source": "chain",
    }
    # LDL names only listed tokens: an unlisted one is written exactly, as raw units of its address
    assert f"price 2000 units of {token.address} per MU, upfront 10000000 units of {token.address}" in t["ldl"]
    assert c.get(f"/api/capsules/{capsule_id(3)}").json()["terms"][0]["price_per_mu_text"] == "50 units of 0xaAaA…aaAa"
    assert c.get(f"/api/capsules/{capsule_id(1)}").json()["terms"][0]["price_per_mu_text"] == "0.000007 USDC"


def test_rpc_down__token_deferred_not_marked_unknown(engine, tmp_path):
    populate(engine, tmp_path)
    dead = Web3Source.from_url("http://127.0.0.1:9")  # discard port: nothing answers
    assert TokenWorker(engine, dead, CHAIN).process() == {"deferred": 1}
    assert _rows(engine) == {}


def test_address_book_tokens__listed_without_a_call(engine, tmp_path):
    populate(engine, tmp_path)
    book = {"tUSD": {"address": "0x" + "aa" * 20, "decimals": 2}}
    dead = Web3Source.from_url("http://127.0.0.1:9")
    assert TokenWorker(engine, dead, CHAIN, token_list=book).process() == {"list": 1}
    t = TestClient(create_app(engine)).get(f"/api/capsules/{capsule_id(3)}").json()["terms"][0]
    assert t["price_per_mu_text"] == "0.5 tUSD" and t["token"]["listed"] and "price 0.5 tUSD per MU" in t["ldl"]


@given(raw=st.integers(0, 2**256 - 1), decimals=st.integers(0, 77))
def test_amounts_fmt__exact_for_every_uint256(raw, decimals):
    number, symbol = amounts.fmt(raw, "TOK", decimals).split(" ")
    assert symbol == "TOK" and amounts.to_raw(number, decimals) == raw


def test_amounts_fmt_unknown__raw_and_short_address():
    assert amounts.fmt_unknown(2000, LISTED_USDC) == "2000 units of 0x5FbD…0aa3"


def test_migration_0005__requeues_fetched_manifests_so_their_card_is_filled(tmp_path):
    from codexfield.cid import cid_from_digest
    from codexfield.indexer.db import make_engine, migrate
    from codexfield.indexer.manifests import ManifestWorker
    from codexfield.manifest import canonical
    from codexfield.store import LocalStore

    from synth import minted

    engine = make_engine(tmp_path / "old.db")
    migrate(engine, "0004")
    store = LocalStore(tmp_path / "store")
    data = canonical(
        {
            "schema_version": 1,
            "name": "Old",
            "kind": "model",
            "model_card": {"task": "ocr"},
            "files": [{"path": "a", "size": 1, "sha256": hashlib.sha256(b"a").hexdigest()}],
        }
    )
    store.put(data)
    digest = hashlib.sha256(data).digest()
    with engine.begin() as conn:  # as a 0004 worker left it: fetched, no card column yet
        conn.execute(
            text(
                "INSERT INTO manifests (cid, uri, status, attempts, next_attempt_at, name, description, "
                "tags, body) VALUES (:cid, '', 'ok', 1, 0, 'Old', '', 'model', '')"
            ),
            {"cid": cid_from_digest(digest)},
        )
    migrate(engine)
    Feed(engine).block_of([minted(1, creator=ALICE, content_hash=digest)])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status, name, card FROM manifests")).one() == ("pending", "Old", "")
    ManifestWorker(engine, store=store).process()
    card = TestClient(create_app(engine)).get(f"/api/capsules/{capsule_id(1)}").json()["manifest"]["card"]
    assert card["model_card"]["task"] == "ocr"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.Token.__table__)).scalar_one() == 0
