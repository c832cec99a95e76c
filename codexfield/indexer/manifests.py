"""Manifest fetching: by CID through `codexfield.store`, verified, indexed for full-text search.

Every minted capsule queues its manifest CID (derived from the on-chain `content_hash`, so
integrity is by construction). `ManifestWorker.process()` fetches the due entries:

* the capsule's `uri` when it is `http(s)://` or `file://` (checked against the CID), else the
  configured store (`open_store()`: LocalStore by default, kubo or a gateway by spec);
* an `ipfs://` uri naming another or an unparsable CID is a `bad_cid` failure;
* the bytes must hash to the CID (`IntegrityError` otherwise) and parse as a valid manifest;
  its search text (`search_fields`) and its card (`card_fields`, what the capsule page shows,
  JSON in `manifests.card`) are stored.

Failures stay in the queue (`status = retry`) with exponential back-off:
`next_attempt_at = now + min(base * 2**(attempts - 1), max_delay)`; after `max_attempts`
the status becomes `failed` (still listed by `codexfield index status` and `/api/status`).
Manifests are keyed by CID and are not journaled: a reorg cannot make a verified manifest wrong.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, or_, select, update

from codexfield.cid import CIDError, digest_from_cid
from codexfield.indexer.models import Manifest
from codexfield.manifest import ManifestError, load_manifest
from codexfield.store import IntegrityError, NotFound, StoreError, fetch, open_store

MANIFESTS = Manifest.__table__


def classify(exc: BaseException) -> str:
    if isinstance(exc, IntegrityError):
        return "integrity"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, BadCID):
        return "bad_cid"
    if isinstance(exc, ManifestError):
        return "malformed"
    if isinstance(exc, (StoreError, OSError)):
        return "unreachable"
    return "error"


class BadCID(ValueError):
    pass


def search_fields(manifest: dict[str, Any]) -> dict[str, str]:
    """The text a manifest contributes to full-text search."""
    tags: list[str] = []

    def strings(v: Any) -> None:
        if isinstance(v, str):
            tags.append(v)
        elif isinstance(v, list):
            for x in v:
                strings(x)
        elif isinstance(v, dict):
            for x in v.values():
                strings(x)

    for card in ("model_card", "dataset_card"):
        strings(manifest.get(card))
    body_parts = [
        json.dumps(manifest.get(k), sort_keys=True)
        for k in ("model_card", "dataset_card", "license")
        if manifest.get(k)
    ]
    body_parts.extend(str(f.get("path", "")) for f in manifest.get("files", [])[:200] if isinstance(f, dict))
    return {
        "name": str(manifest.get("name", "")),
        "description": str(manifest.get("description", "")),
        "tags": " ".join(tags + [str(manifest.get("kind", ""))]),
        "body": "\n".join(body_parts),
    }


MODEL_TEXT = (
    "task",
    "architecture",
    "base_model",
    "intended_use",
    "out_of_scope_use",
    "limitations",
    "ethical_considerations",
    "license",
)
DATASET_TEXT = ("task", "collection_process", "preprocessing", "format", "intended_use", "limitations", "license")
MAX_EXTENSIONS = 32


def _languages(v: Any) -> list[str]:
    return [str(x) for x in (v if isinstance(v, list) else [v])] if v else []


def _refs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def _extensions(card: dict[str, Any]) -> dict[str, str]:
    """The card's `x-...` fields, as text (JSON for non-strings), at most `MAX_EXTENSIONS`."""
    out = {}
    for k in sorted(k for k in card if k.startswith("x-"))[:MAX_EXTENSIONS]:
        v = card[k]
        out[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)
    return out


def card_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the catalog page's card shows (`schemas.ManifestCard`), from a validated manifest.

    The manifest is attacker-controlled text: this keeps its values as plain data (strings,
    numbers, booleans), and the page only ever puts them into the DOM as text."""
    files = [f for f in manifest.get("files", []) if isinstance(f, dict)]
    out: dict[str, Any] = {
        "version": manifest.get("version"),
        "creator": manifest.get("creator"),
        "parents": [str(p) for p in manifest.get("parents", [])],
        "files": len(files),
        "size_bytes": sum(int(f.get("size", 0)) for f in files),
        "license": None,
        "model_card": None,
        "dataset_card": None,
    }
    lic = manifest.get("license")
    if isinstance(lic, dict):
        out["license"] = {k: lic.get(k) for k in ("spdx", "terms_id", "ldl_uri", "ldl_sha256", "text_sha256")}
    mc = manifest.get("model_card")
    if isinstance(mc, dict):
        out["model_card"] = {
            **{k: (str(mc[k]) if k in mc else None) for k in MODEL_TEXT},
            "parameters": mc.get("parameters"),
            "language": _languages(mc.get("language")),
            "training_data": _refs(mc.get("training_data")),
            "metrics": [
                {
                    "name": str(x.get("name")),
                    "value": x.get("value"),
                    "dataset": x.get("dataset"),
                    "split": x.get("split"),
                }
                for x in mc.get("metrics", [])
                if isinstance(x, dict)
            ],
            "extensions": _extensions(mc),
        }
    dc = manifest.get("dataset_card")
    if isinstance(dc, dict):
        source = dc.get("source")
        size = dc.get("size") if isinstance(dc.get("size"), dict) else {}
        out["dataset_card"] = {
            **{k: (str(dc[k]) if k in dc else None) for k in DATASET_TEXT},
            "language": _languages(dc.get("language")),
            "source": source if isinstance(source, str) else None,
            "sources": _refs(source),
            "records": size.get("records"),
            "size_bytes": size.get("bytes"),
            "personal_data": dc.get("personal_data"),
            "sensitive": dc.get("sensitive"),
            "extensions": _extensions(dc),
        }
    return out


@dataclass
class ManifestWorker:
    engine: Engine
    store: Any = None
    base_delay: float = 5.0
    max_delay: float = 3600.0
    max_attempts: int = 12
    timeout: float = 10.0

    def __post_init__(self):
        if self.store is None:
            self.store = open_store()

    def fetch(self, cid: str, uri: str) -> bytes:
        try:
            digest_from_cid(cid)
        except CIDError as exc:
            raise BadCID(f"{cid} is not a CIDv1 raw/sha2-256 ({exc})") from None
        if uri.startswith("ipfs://"):
            named = uri[len("ipfs://") :].split("/")[0]
            try:
                digest_from_cid(named.lower())
            except CIDError as exc:
                raise BadCID(f"the capsule's uri {uri!r} does not name a valid CID ({exc})") from None
            if named.lower() != cid:
                raise BadCID(f"the capsule's uri names {named} but its content_hash commits to {cid}")
            return self.store.get(cid)
        if uri.startswith(("http://", "https://", "file://")):
            return fetch(uri, cid, timeout=self.timeout)
        return self.store.get(cid)

    def process(self, limit: int = 100, now: float | None = None) -> dict[str, int]:
        """Fetch up to `limit` due manifests; returns counts by outcome."""
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            due = conn.execute(
                select(MANIFESTS.c.cid, MANIFESTS.c.uri, MANIFESTS.c.attempts)
                .where(or_(MANIFESTS.c.status == "pending", MANIFESTS.c.status == "retry"))
                .where(MANIFESTS.c.next_attempt_at <= now)
                .order_by(MANIFESTS.c.next_attempt_at)
                .limit(limit)
            ).all()
        counts: dict[str, int] = {}
        for cid, uri, attempts in due:
            try:
                manifest = load_manifest(self.fetch(cid, uri or ""))
                values = {
                    **search_fields(manifest),
                    "card": json.dumps(card_fields(manifest), sort_keys=True),
                    "status": "ok",
                    "last_error": None,
                    "error_kind": None,
                    "attempts": attempts + 1,
                }
                outcome = "ok"
            except Exception as exc:  # noqa: BLE001 - every failure goes to the retry queue
                kind = classify(exc)
                n = attempts + 1
                values = {
                    "status": "failed" if n >= self.max_attempts else "retry",
                    "attempts": n,
                    "next_attempt_at": now + min(self.base_delay * 2 ** (n - 1), self.max_delay),
                    "last_error": str(exc)[:2000],
                    "error_kind": kind,
                }
                outcome = kind
            with self.engine.begin() as conn:
                conn.execute(update(MANIFESTS).where(MANIFESTS.c.cid == cid).values(**values))
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts
