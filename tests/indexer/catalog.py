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
        data = canonical({"schema_version": 1, "name": name, "kind": kind, "description": desc,
                          "files": [{"path": "a.bin", "size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}]})
        store.put(data)
        hashes[i] = hashlib.sha256(data).digest()
    kinds = {"dataset": 1, "model": 2, "prompt": 4}
    f = Feed(engine)
    f.block_of([minted(1, kind=1, content_hash=hashes[1]),
                minted(2, kind=2, parents=[(1, 2000)], content_hash=hashes[2]),
                minted(3, creator=BOB, kind=2, parents=[(2, 3000), (1, 1000)], content_hash=hashes[3]),
                minted(4, kind=kinds["prompt"], content_hash=hashes[4]),
                minted(5, creator=BOB, kind=4, parents=[(4, 500)], content_hash=hashes[5])])
    f.block_of([terms(1, 2, price=5, scope=scopes.mask_of(["research", "inference"])),
                terms(2, 3, price=50, scope=scopes.mask_of(["commercial", "inference"])),
                issued(1, 1, 2), issued(2, 2, 3), state(4, 4)])
    f.block_of([usage(1, 2, calls=100, failures=2, latency=100 * 200), usage(2, 3, calls=10, failures=5, latency=10000),
                rated(2, 1, 5), rated(3, 2, 2), attested(1, 2), credited(3, 1000)])
    f.block_of([propagated(3, 1000, 400), claimed(3, 600, owner=BOB)])
    ManifestWorker(engine, store=store).process()
    ranking.refresh(engine)
