"""The catalog HTTP API (FastAPI) and the catalog web page.

    GET /api/capsules        search: q, kind, creator (0x address or did:ethr), scope (repeat),
                             max_price, min_rating, audited, chain_id, include_moderated, sort,
                             limit (1..100), offset
    GET /api/capsules/{id}   detail: manifest, score, terms, usage, royalties and flows,
                             ratings, attestations, versions, lineage (id is CAIP-19)
    GET /api/lineage/{id}    ancestors / descendants via recursive CTEs (depth 1..32)
    GET /api/rankings        capsules by score (moderated ones excluded), optional kind
    GET /api/nodes           nodes with their recent epoch scores
    GET /api/status          per chain head, indexed block, lag, reorgs; manifest retry queue
    GET /openapi.json        the OpenAPI document;  GET /  the catalog page

Bad parameters answer 400 with `{"error": "<what is wrong and how to fix it>"}`; unknown ids 404.
Search and rankings count matches exactly up to 1,000 (`queries.TOTAL_CAP`); beyond that
`total_capped` is true and `total` is a lower bound; `next_offset` is always exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from codexfield import scopes
from codexfield.constants import Kind
from codexfield.indexer import queries
from codexfield.indexer.queries import CAIP19, BadRequest

STATIC = Path(__file__).resolve().parent / "static"


def _kind(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if value.isdigit() and 1 <= int(value) <= 7:
        return int(value)
    try:
        return int(Kind[value.strip().upper().replace("-", "_").replace(" ", "_")])
    except KeyError:
        raise BadRequest(f"kind: {value!r} is not a capsule kind; use 1..7 or one of "
                         f"{', '.join(k.name.lower() for k in Kind)}") from None


def _creator(value: str | None) -> str | None:
    if not value:
        return None
    from eth_utils import is_address, to_checksum_address

    address = value.rsplit(":", 1)[-1] if value.startswith("did:") else value
    if not is_address(address):
        raise BadRequest(f"creator: {value!r} is neither a 0x address nor a did:ethr DID")
    return to_checksum_address(address)


def _scopes(values: list[str] | None) -> list[str]:
    out = []
    for v in values or []:
        for name in (s.strip().lower() for s in v.split(",")):
            if not name:
                continue
            if name not in scopes.BY_NAME:
                raise BadRequest(f"scope: unknown scope {name!r}; known: {', '.join(scopes.BY_NAME)}")
            out.append(name)
    return out


def _check_id(capsule_id: str) -> str:
    if not CAIP19.match(capsule_id):
        raise BadRequest(f"{capsule_id!r} is not a capsule id; use CAIP-19: eip155:<chain>/erc721:<registry>/<token id>")
    return capsule_id


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="CodexField catalog", version="1.0",
                  description="Search, lineage, rankings and usage of CodexField capsules, rebuilt from chain events.")

    @app.exception_handler(BadRequest)
    async def _bad(_: Request, exc: BadRequest):
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        msgs = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path"))
            msgs.append(f"{where}: {e.get('msg')} (got {e.get('input')!r})")
        return JSONResponse(status_code=400, content={"error": "; ".join(msgs), "detail": jsonable(exc.errors())})

    @app.get("/api/capsules", summary="Search capsules")
    def search(
        q: Annotated[str | None, Query(max_length=200, description="full-text query over manifests")] = None,
        kind: Annotated[str | None, Query(description="1..7 or a kind name (dataset, model, ...)")] = None,
        creator: Annotated[str | None, Query(description="creator address or did:ethr")] = None,
        scope: Annotated[list[str] | None, Query(description="license scope names every result must offer")] = None,
        max_price: Annotated[int | None, Query(ge=0, description="max price per MU (token units) of active terms")] = None,
        min_rating: Annotated[float | None, Query(ge=1, le=5, description="minimum average verified stars")] = None,
        audited: Annotated[bool | None, Query(description="has a valid passed audit")] = None,
        chain_id: Annotated[int | None, Query(ge=1)] = None,
        include_moderated: bool = False,
        sort: Annotated[str, Query(description="score | newest | rating | calls")] = "score",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        with engine.connect() as conn:
            return queries.search(conn, q=q, kind=_kind(kind), creator=_creator(creator), scope=_scopes(scope),
                                  max_price=max_price, min_rating=min_rating, audited=audited, chain_id=chain_id,
                                  include_moderated=include_moderated, sort=sort, limit=limit, offset=offset)

    @app.get("/api/capsules/{capsule_id:path}", summary="One capsule with lineage, terms, usage and royalties")
    def capsule(capsule_id: str) -> dict[str, Any]:
        with engine.connect() as conn:
            out = queries.capsule(conn, _check_id(capsule_id))
        if out is None:
            raise HTTPException(404, detail=f"no capsule {capsule_id} in the catalog (not minted, or not indexed yet)")
        return out

    @app.get("/api/lineage/{capsule_id:path}", summary="Ancestors and descendants")
    def lineage(capsule_id: str, depth: Annotated[int, Query(ge=1, le=32)] = 8) -> dict[str, Any]:
        with engine.connect() as conn:
            if queries.capsule_exists(conn, _check_id(capsule_id)) is False:
                raise HTTPException(404, detail=f"no capsule {capsule_id} in the catalog")
            return queries.lineage(conn, capsule_id, depth=depth)

    @app.get("/api/rankings", summary="Capsules by ranking score")
    def rankings(kind: str | None = None, limit: Annotated[int, Query(ge=1, le=100)] = 20,
                 offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        with engine.connect() as conn:
            return queries.search(conn, kind=_kind(kind), sort="score", limit=limit, offset=offset)

    @app.get("/api/nodes", summary="Nodes with their scores")
    def nodes(limit: Annotated[int, Query(ge=1, le=100)] = 50, offset: Annotated[int, Query(ge=0)] = 0):
        with engine.connect() as conn:
            return queries.nodes(conn, limit=limit, offset=offset)

    @app.get("/api/status", summary="Indexing progress and the manifest retry queue")
    def status() -> dict[str, Any]:
        with engine.connect() as conn:
            return queries.status(conn)

    @app.get("/api/meta", summary="Kinds and scope names (for clients)")
    def meta() -> dict[str, Any]:
        return {"kinds": {k.value: k.name.lower() for k in Kind}, "scopes": list(scopes.BY_NAME)}

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def jsonable(errors: list[dict]) -> list[dict]:
    return [{k: (v if isinstance(v, (str, int, float, list, type(None))) else str(v)) for k, v in e.items()
             if k != "ctx"} for e in errors]
