"""A small populated catalog (synthetic events + real manifests) shared by the API and web tests."""

from __future__ import annotations

import hashlib

from codexfield import scopes
from codexfield.indexer import ranking
from codexfield.indexer.manifests import ManifestWorker
from codexfield.manifest import canonical
from codexfield.store import LocalStore

from synth import BOB, Feed, attested, claimed, credited, issued, minted, propagated, rated, state, terms, usage

NAMES = {
    1: ("Reviews corpus", "Product reviews dataset with star labels", "dataset"),
    2: ("Sentiment model", "Transformer fine-tuned on reviews for sentiment", "model"),
    3: ("Sentiment model distilled", "Smaller student of the sentiment model", "model"),
    4: ("Toxic prompts", "A prompt set under dispute", "prompt"),
    5: ("Derived from toxic", "Built on the disputed prompts", "prompt"),
}


def populate(engine, tmp_path) -> None:
    store = LocalStore(tmp_path / "store")
    hashes = {}
    for i, (name, desc, kind) in NAMES.items():
        data = canonical(
            {
                "schema_version": 1,
                "name": name,
                "kind": kind,
                "description": desc,
                "files": [{"path": "a.bin", "size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}],
            }
        )
        store.put(data)
        hashes[i] = hashlib.sha256(data).digest()
    kinds = {"dataset": 1, "model": 2, "prompt": 4}
    f = Feed(engine)
    f.block_of(
        [
            minted(1, kind=1, content_hash=hashes[1]),
            minted(2, kind=2, parents=[(1, 2000)], content_hash=hashes[2]),
            minted(3, creator=BOB, kind=2, parents=[(2, 3000), (1, 1000)], content_hash=hashes[3]),
            minted(4, kind=kinds["prompt"], content_hash=hashes[4]),
            minted(5, creator=BOB, kind=4, parents=[(4, 500)], content_hash=hashes[5]),
        ]
    )
    f.block_of(
        [
            terms(1, 2, price=5, scope=scopes.mask_of(["research", "inference"])),
            terms(2, 3, price=50, scope=scopes.mask_of(["commercial", "inference"])),
            issued(1, 1, 2),
            issued(2, 2, 3),
            state(4, 4),
        ]
    )
    f.block_of(
        [
            usage(1, 2, calls=100, failures=2, latency=100 * 200),
            usage(2, 3, calls=10, failures=5, latency=10000),
            rated(2, 1, 5),
            rated(3, 2, 2),
            attested(1, 2),
            credited(3, 1000),
        ]
    )
    f.block_of([propagated(3, 1000, 400), claimed(3, 600, owner=BOB)])
    ManifestWorker(engine, store=store).process()
    ranking.refresh(engine)


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
MODEL_CARD = {
    "task": "text-classification",
    "architecture": "TinyBERT",
    "parameters": 66_000_000,
    "language": ["en", "pt-BR"],
    "base_model": 2,
    "training_data": [1, "https://example.org/reviews", "javascript:window.__pwned=1"],
    "metrics": [
        {"name": "accuracy", "value": 0.913, "dataset": "reviews", "split": "test"},
        {"name": "f1" + HOSTILE, "value": 0.88},
    ],
    "intended_use": "Sorting product reviews by mood.\n" + HOSTILE,
    "out_of_scope_use": "Medical or legal decisions.",
    "limitations": "English and Portuguese only.",
    "license": "Apache-2.0",
    "x-html": HOSTILE,
}
DATASET_CARD = {
    "task": "text-classification",
    "language": "en",
    "source": "Public product pages, 2024.",
    "collection_process": "Scraped with consent banners honoured.",
    "size": {"records": 120_000, "bytes": 48_000_000},
    "format": "jsonl",
    "personal_data": False,
    "sensitive": False,
    "intended_use": "Training sentiment models.",
    "limitations": "Skewed towards electronics.",
    "license": "CC-BY-4.0",
}


def populate_cards(engine, tmp_path, token: str, first: int = 6) -> dict[str, int]:
    """Two more capsules with full cards and terms in `token`: `first` a model whose manifest is
    hostile (HTML and script in its name, description and card text), `first + 1` a dataset.
    Terms: 2000 raw units per MU, upfront 10 000 000 (0.002 and 10 tokens at 6 decimals)."""
    from eth_utils import keccak

    from synth import minted, terms

    store = LocalStore(tmp_path / "store")
    docs = {
        first: {
            "schema_version": 1,
            "name": "Evil " + HOSTILE,
            "kind": "model",
            "version": "2.1.0",
            "description": "A model card test " + HOSTILE,
            "model_card": MODEL_CARD,
            "license": {"spdx": "Apache-2.0", "terms_id": 3},
            "files": [{"path": "model.bin", "size": 2048, "sha256": hashlib.sha256(b"m").hexdigest()}],
        },
        first + 1: {
            "schema_version": 1,
            "name": "Reviews 2024",
            "kind": "dataset",
            "description": "Reviews.",
            "dataset_card": DATASET_CARD,
            "files": [{"path": "data.jsonl", "size": 10, "sha256": hashlib.sha256(b"d").hexdigest()}],
        },
    }
    hashes = {}
    for n, doc in docs.items():
        data = canonical(doc)
        store.put(data)
        hashes[n] = hashlib.sha256(data).digest()
    events = [
        minted(first, kind=2, parents=[(2, 1000)], content_hash=hashes[first]),
        minted(first + 1, kind=1, content_hash=hashes[first + 1]),
    ]
    ids = {}
    for i, n in enumerate((first, first + 1)):
        t = terms(
            10 + i, n, price=2000, upfront=10_000_000, scope=scopes.mask_of(["research", "inference", "derivatives"])
        )
        t[2].update(payment_token=token, meter=keccak(text="gpu.second"), text_hash=b"\x00" * 32, duration=30 * 86400)
        events.append(t)
        ids[n] = 10 + i
    Feed(engine).block_of(events)
    ManifestWorker(engine, store=store).process()
    ranking.refresh(engine)
    return ids
