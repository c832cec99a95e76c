"""The catalog HTTP API (FastAPI) and the catalog web page.

    GET /api/capsules        search: q, kind, creator (0x address or did:ethr), scope (repeat),
                             max_price, min_rating, audited, chain_id, include_moderated, sort,
                             limit (1..100), offset
    GET /api/capsules/{id}   detail: manifest (with its model/dataset card), score, terms (with
                             their LDL text), usage, royalties and flows, ratings, attestations,
                             versions, lineage (id is CAIP-19); every amount also in token units
    GET /api/lineage/{id}    ancestors / descendants via recursive CTEs (depth 1..32)
    GET /api/rankings        capsules by score (moderated ones excluded), optional kind
    GET /api/nodes           nodes with their recent epoch scores
    GET /api/status          per chain head, indexed block, lag, reorgs; manifest retry queue
    GET /openapi.json        the OpenAPI document;  GET /  the catalog page

Every route has a typed response model (`codexfield.indexer.schemas`), so /openapi.json is the
contract. Every error is `{"error": "<what is wrong and how to fix it>"}`: 400 for a bad
parameter (including numbers out of range: offset and chain_id are below 2^63, max_price at
most 2^256 - 1), 404 for an unknown capsule or route; the document lists exactly these
statuses (FastAPI's default 422 is never sent, so it is not listed). A capsule id is CAIP-19;
its registry address may be given in any case. Search and rankings count matches exactly up
to 1,000 (`queries.TOTAL_CAP`); beyond that `total_capped` is true and `total` is a lower
bound; `next_offset` is always exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from codexfield import scopes
from codexfield.constants import Kind
from codexfield.indexer import queries
from codexfield.indexer import schemas as s
from codexfield.indexer.queries import CAIP19, BadRequest

STATIC = Path(__file__).resolve().parent / "static"
INT63 = 2**63 - 1  # BIGINT columns: larger offsets and chain ids are refused, not a database error
UINT256 = 2**256 - 1
MAX_ID = 160  # the capsule id column's width
# The page renders attacker-controlled manifest text (always as text); the policy is a second
# wall: no inline script, no script or frame from anywhere but this server.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
BAD = {400: {"model": s.Error, "description": "a bad parameter (the message says which and how to fix it)"}}
MISSING = {404: {"model": s.Error, "description": "no such capsule in the catalog"}}


def _kind(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if value.isdigit() and 1 <= int(value) <= 7:
        return int(value)
    try:
        return int(Kind[value.strip().upper().replace("-", "_").replace(" ", "_")])
    except KeyError:
        raise BadRequest(
            f"kind: {value!r} is not a capsule kind; use 1..7 or one of {', '.join(k.name.lower() for k in Kind)}"
        ) from None


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
        for name in (part.strip().lower() for part in v.split(",")):
            if not name:
                continue
            if name not in scopes.BY_NAME:
                raise BadRequest(f"scope: unknown scope {name!r}; known: {', '.join(scopes.BY_NAME)}")
            out.append(name)
    return out


def _check_id(capsule_id: str) -> str:
    """The canonical form of a CAIP-19 capsule id (checksummed registry, plain decimal numbers)."""
    from eth_utils import to_checksum_address

    if len(capsule_id) > MAX_ID or not CAIP19.match(capsule_id):
        raise BadRequest(
            f"{capsule_id[:MAX_ID]!r} is not a capsule id; use CAIP-19: eip155:<chain>/erc721:<registry>/<token id>"
        )
    chain_part, registry_part, token = capsule_id.split("/")
    registry = registry_part.split(":", 1)[1]
    return f"eip155:{int(chain_part.split(':', 1)[1])}/erc721:{to_checksum_address(registry)}/{int(token)}"


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(
        title="CodexField catalog",
        version="1.0",
        description="Search, lineage, rankings and usage of CodexField capsules, rebuilt from chain events.",
    )

    @app.exception_handler(BadRequest)
    async def _bad(_: Request, exc: BadRequest):
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; the API is under /api (see /openapi.json)"
        return JSONResponse(status_code=exc.status_code, content={"error": message}, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        msgs = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path"))
            got = repr(e.get("input"))
            msgs.append(f"{where}: {e.get('msg')} (got {got[:80] + '...' if len(got) > 80 else got})")
        return JSONResponse(status_code=400, content={"error": "; ".join(msgs)})

    @app.get("/api/capsules", summary="Search capsules", response_model=s.SearchPage, responses=BAD)
    def search(
        q: Annotated[str | None, Query(max_length=200, description="full-text query over manifests")] = None,
        kind: Annotated[str | None, Query(description="1..7 or a kind name (dataset, model, ...)")] = None,
        creator: Annotated[str | None, Query(description="creator address or did:ethr")] = None,
        scope: Annotated[list[str] | None, Query(description="license scope names every result must offer")] = None,
        max_price: Annotated[
            int | None, Query(ge=0, le=UINT256, description="max price per MU (token units) of active terms")
        ] = None,
        min_rating: Annotated[float | None, Query(ge=1, le=5, description="minimum average verified stars")] = None,
        audited: Annotated[bool | None, Query(description="has a valid passed audit")] = None,
        chain_id: Annotated[int | None, Query(ge=1, le=INT63)] = None,
        include_moderated: bool = False,
        sort: Annotated[str, Query(description="score | newest | rating | calls")] = "score",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=INT63)] = 0,
    ) -> dict[str, Any]:
        with engine.connect() as conn:
            return queries.search(
                conn,
                q=q,
                kind=_kind(kind),
                creator=_creator(creator),
                scope=_scopes(scope),
                max_price=max_price,
                min_rating=min_rating,
                audited=audited,
                chain_id=chain_id,
                include_moderated=include_moderated,
                sort=sort,
                limit=limit,
                offset=offset,
            )

    @app.get(
        "/api/capsules/{capsule_id:path}",
        summary="One capsule with lineage, terms, usage and royalties",
        response_model=s.CapsuleDetail,
        responses={**BAD, **MISSING},
    )
    def capsule(capsule_id: str) -> dict[str, Any]:
        cid = _check_id(capsule_id)
        with engine.connect() as conn:
            out = queries.capsule(conn, cid)
        if out is None:
            raise HTTPException(404, detail=f"no capsule {cid} in the catalog (not minted, or not indexed yet)")
        return out

    @app.get(
        "/api/lineage/{capsule_id:path}",
        summary="Ancestors and descendants",
        response_model=s.Lineage,
        responses={**BAD, **MISSING},
    )
    def lineage(capsule_id: str, depth: Annotated[int, Query(ge=1, le=32)] = 8) -> dict[str, Any]:
        cid = _check_id(capsule_id)
        with engine.connect() as conn:
            if not queries.capsule_exists(conn, cid):
                raise HTTPException(404, detail=f"no capsule {cid} in the catalog")
            return queries.lineage(conn, cid, depth=depth)

    @app.get("/api/rankings", summary="Capsules by ranking score", response_model=s.SearchPage, responses=BAD)
    def rankings(
        kind: Annotated[str | None, Query(description="1..7 or a kind name")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=INT63)] = 0,
    ) -> dict[str, Any]:
        with engine.connect() as conn:
            return queries.search(conn, kind=_kind(kind), sort="score", limit=limit, offset=offset)

    @app.get("/api/nodes", summary="Nodes with their scores", response_model=s.NodePage, responses=BAD)
    def nodes(
        limit: Annotated[int, Query(ge=1, le=100)] = 50, offset: Annotated[int, Query(ge=0, le=INT63)] = 0
    ) -> dict[str, Any]:
        with engine.connect() as conn:
            return queries.nodes(conn, limit=limit, offset=offset)

    @app.get("/api/status", summary="Indexing progress and the manifest retry queue", response_model=s.Status)
    def status() -> dict[str, Any]:
        with engine.connect() as conn:
            return queries.status(conn)

    @app.get("/api/meta", summary="Kinds and scope names (for clients)", response_model=s.Meta)
    def meta() -> dict[str, Any]:
        return {"kinds": {str(k.value): k.name.lower() for k in Kind}, "scopes": list(scopes.BY_NAME)}

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def openapi() -> dict[str, Any]:
        """FastAPI's document without the 422 it lists for every route with parameters: a
        validation failure answers 400 (listed, with `Error`) like every other bad parameter."""
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    return app
