"""The catalog schema (SQLAlchemy 2 declarative models).

Two families of tables:

* **event-derived** (`JOURNALED`): written only by the event handlers, through
  `codexfield.indexer.journal.Writer`, which records the before-image of every row it touches
  in `journal` together with the block number of the event. A reorg rolls these tables back
  exactly by replaying the journal backwards (see `codexfield.indexer.ingest`).
* **derived / off-chain** (`manifests`, `capsule_scores`): recomputed or fetched outside the
  block stream, keyed so that a reorg cannot make them wrong (manifests are keyed by CID,
  scores are recomputed after every applied batch).

Entity ids are CAIP strings so that many chains share one catalog:
capsules and credentials are CAIP-19 (`eip155:<chain>/erc721:<contract>/<id>`), accounts and
nodes CAIP-10 (`eip155:<chain>:<address>`); terms and attestations, which are not tokens, use
`eip155:<chain>:<contract>/terms/<id>` and `.../attestation/<id>`.

uint256 amounts use `Uint`: a zero-padded 78-digit decimal string, so that SQL comparisons
and ORDER BY are numeric on every dialect and no precision is lost; running totals are kept
by the handlers (SQL SUM is not used on them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

UINT_DIGITS = 78  # len(str(2**256 - 1))


class Uint(TypeDecorator):
    """An unsigned 256-bit integer stored as a zero-padded decimal string (orderable, exact)."""

    impl = String(UINT_DIGITS)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> str | None:
        if value is None:
            return None
        v = int(value)
        if v < 0 or v >= 1 << 256:
            raise ValueError(f"{v} is not a uint256")
        return str(v).zfill(UINT_DIGITS)

    def process_result_value(self, value: Any, dialect) -> int | None:
        return None if value is None else int(value)


class Base(DeclarativeBase):
    pass


def U(default: int | None = 0, **kw):
    return mapped_column(Uint(), default=default, nullable=default is None, **kw)


# --- bookkeeping --------------------------------------------------------------------------


class Chain(Base):
    """One indexed chain: its checkpoint (last fully indexed block) and last seen head."""

    __tablename__ = "chains"
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    start_block: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_block: Mapped[int] = mapped_column(BigInteger, default=-1)
    head: Mapped[int] = mapped_column(BigInteger, default=0)
    contracts: Mapped[str] = mapped_column(Text, default="{}")  # JSON {name: address}
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)
    reorgs: Mapped[int] = mapped_column(Integer, default=0)


class Block(Base):
    """Hashes of indexed blocks (every block with logs, and the last block of each range)."""

    __tablename__ = "blocks"
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))
    timestamp: Mapped[int] = mapped_column(BigInteger, default=0)


class Journal(Base):
    """Undo journal: the before-image of each row a handler touched (NULL: the row was new)."""

    __tablename__ = "journal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    table_name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(Text)
    before: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (Index("ix_journal_chain_block", "chain_id", "block_number"),)


# --- capsules and lineage -----------------------------------------------------------------


class Capsule(Base):
    __tablename__ = "capsules"
    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger, index=True)
    registry_address: Mapped[str] = mapped_column(String(42))
    token_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[int] = mapped_column(Integer, index=True)
    content_hash: Mapped[str] = mapped_column(String(66))
    cid: Mapped[str] = mapped_column(String(80), index=True)
    creator: Mapped[str] = mapped_column(String(42), index=True)
    creator_did: Mapped[str] = mapped_column(String(120), index=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    root_id: Mapped[str] = mapped_column(String(160), index=True)
    latest_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    uri: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[int] = mapped_column(Integer, default=1, index=True)
    state_by: Mapped[str | None] = mapped_column(String(42), nullable=True)
    state_reason: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_block: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=0)


class LineageEdge(Base):
    __tablename__ = "lineage"
    child_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    parent_id: Mapped[str] = mapped_column(String(160), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    share_bps: Mapped[int] = mapped_column(Integer)


# --- licenses -----------------------------------------------------------------------------


class Terms(Base):
    __tablename__ = "terms"
    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    terms_id: Mapped[int] = mapped_column(BigInteger)
    capsule_id: Mapped[str] = mapped_column(String(160), index=True)
    payment_token: Mapped[str] = mapped_column(String(42))
    price_per_mu: Mapped[int] = U()
    upfront_fee: Mapped[int] = U()
    meter: Mapped[str] = mapped_column(String(66), default="")
    duration: Mapped[int] = mapped_column(BigInteger, default=0)
    mu_quota: Mapped[int] = U()
    rate_mu: Mapped[int] = U()
    rate_period: Mapped[int] = mapped_column(BigInteger, default=0)
    scope: Mapped[int] = U()
    scope_names: Mapped[str] = mapped_column(Text, default="")  # ",research,derivatives,"
    derivative_share_bps: Mapped[int] = mapped_column(Integer, default=0)
    revocation: Mapped[int] = mapped_column(Integer, default=0)
    notice_period: Mapped[int] = mapped_column(BigInteger, default=0)
    max_credentials: Mapped[int] = mapped_column(BigInteger, default=0)
    transferable: Mapped[bool] = mapped_column(Boolean, default=False)
    text_hash: Mapped[str] = mapped_column(String(66), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    credentials_issued: Mapped[int] = mapped_column(Integer, default=0)


class Credential(Base):
    __tablename__ = "credentials"
    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    credential_id: Mapped[int] = mapped_column(BigInteger)
    terms_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    capsule_id: Mapped[str | None] = mapped_column(String(160), nullable=True, index=True)
    holder: Mapped[str] = mapped_column(String(42), default="")
    expires_at: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked_by: Mapped[str | None] = mapped_column(String(42), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(66), nullable=True)
    revoked_effective_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# --- usage --------------------------------------------------------------------------------


class UsageChannel(Base):
    """Settled usage per (credential, node, payer) channel: running sums of UsageRecorded deltas
    (`consumer` is the channel's payer)."""

    __tablename__ = "usage_channels"
    id: Mapped[str] = mapped_column(String(240), primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(160), index=True)
    capsule_id: Mapped[str] = mapped_column(String(160), index=True)
    node: Mapped[str] = mapped_column(String(80), index=True)
    consumer: Mapped[str] = mapped_column(String(42), default="")
    mu: Mapped[int] = U()
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    license_amount: Mapped[int] = U()
    node_amount: Mapped[int] = U()
    protocol_fee: Mapped[int] = U()
    rejected: Mapped[int] = mapped_column(Integer, default=0)


class MeterConfig(Base):
    """The UsageMeter's time parameters, from its `MeterConfigured` constructor event (one per chain)."""

    __tablename__ = "meter_configs"
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    meter: Mapped[str] = mapped_column(String(42), default="")
    epoch_length: Mapped[int] = mapped_column(BigInteger, default=0)
    genesis: Mapped[int] = mapped_column(BigInteger, default=0)
    settlement_window: Mapped[int] = mapped_column(BigInteger, default=0)
    withdrawal_thaw: Mapped[int] = mapped_column(BigInteger, default=0)


class CapsuleUsage(Base):
    __tablename__ = "capsule_usage"
    capsule_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    mu: Mapped[int] = U()
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    license_amount: Mapped[int] = U()
    node_amount: Mapped[int] = U()


class NodeEpochUsage(Base):
    __tablename__ = "node_epoch_usage"
    node: Mapped[str] = mapped_column(String(80), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mu: Mapped[int] = U()
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[int] = mapped_column(BigInteger, default=0)


# --- royalties ----------------------------------------------------------------------------


class RoyaltyVault(Base):
    """Per (capsule, token): `vault` (waiting to propagate) and `claimable` (the owner's share)."""

    __tablename__ = "royalty_vaults"
    capsule_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    token: Mapped[str] = mapped_column(String(42), primary_key=True)
    vault: Mapped[int] = U()
    claimable: Mapped[int] = U()
    credited_total: Mapped[int] = U()
    from_children_total: Mapped[int] = U()
    to_parents_total: Mapped[int] = U()
    claimed_total: Mapped[int] = U()


class RoyaltyFlow(Base):
    """Cumulative amount that moved from `source` to `target` in `token` (capsule ids or CAIP-10)."""

    __tablename__ = "royalty_flows"
    source: Mapped[str] = mapped_column(String(160), primary_key=True)
    target: Mapped[str] = mapped_column(String(160), primary_key=True, index=True)
    token: Mapped[str] = mapped_column(String(42), primary_key=True)
    amount: Mapped[int] = U()


# --- nodes --------------------------------------------------------------------------------


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(42))
    endpoint: Mapped[str] = mapped_column(Text, default="")
    services: Mapped[int] = U()
    region: Mapped[str] = mapped_column(String(32), default="")
    tee_signer: Mapped[str] = mapped_column(String(42), default="")
    price_per_mu: Mapped[int] = U()
    stake: Mapped[int] = U()
    unbonding: Mapped[int] = U()
    thaw_end: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[int] = mapped_column(Integer, default=1)
    reliability: Mapped[int] = U()
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    jailed_until: Mapped[int] = mapped_column(BigInteger, default=0)
    slashed_total: Mapped[int] = U()
    rewards_claimed: Mapped[int] = U()


class EpochScore(Base):
    __tablename__ = "epoch_scores"
    node: Mapped[str] = mapped_column(String(80), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reports: Mapped[int] = mapped_column(Integer, default=0)
    probes: Mapped[int] = mapped_column(BigInteger, default=0)
    successes: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    quality: Mapped[int | None] = U(None)
    reliability: Mapped[int | None] = U(None)
    weight: Mapped[int | None] = U(None)
    strikes: Mapped[int | None] = mapped_column(Integer, nullable=True)


# --- reputation and identity --------------------------------------------------------------


class Rating(Base):
    __tablename__ = "ratings"
    credential_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    capsule_id: Mapped[str] = mapped_column(String(160), index=True)
    rater: Mapped[str] = mapped_column(String(42))
    stars: Mapped[int] = mapped_column(Integer)
    review_hash: Mapped[str] = mapped_column(String(66))
    updates: Mapped[int] = mapped_column(Integer, default=0)


class Attestation(Base):
    __tablename__ = "attestations"
    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    attestation_id: Mapped[int] = mapped_column(BigInteger)
    capsule_id: Mapped[str] = mapped_column(String(160), index=True)
    auditor: Mapped[str] = mapped_column(String(42))
    standard: Mapped[str] = mapped_column(String(66))
    passed: Mapped[bool] = mapped_column(Boolean)
    report_hash: Mapped[str] = mapped_column(String(66))
    valid_until: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Did(Base):
    """ERC-1056 identities seen on chain: current owner and number of changes."""

    __tablename__ = "dids"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # CAIP-10 of the identity
    did: Mapped[str] = mapped_column(String(120))
    owner: Mapped[str] = mapped_column(String(42))
    changes: Mapped[int] = mapped_column(Integer, default=0)


# --- off-chain: manifests and derived scores (not journaled) ------------------------------


class Manifest(Base):
    """A capsule manifest by CID; also the retry queue (status `retry`, `next_attempt_at`)."""

    __tablename__ = "manifests"
    cid: Mapped[str] = mapped_column(String(80), primary_key=True)
    uri: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    card: Mapped[str] = mapped_column(Text, default="")  # JSON: `manifests.card_fields` (the page's card)


class Token(Base):
    """Symbol and decimals of a payment token, for showing amounts in token units
    (`codexfield.indexer.tokens`). `source` is `chain` (a one-time eth_call of symbol() and
    decimals(), the one read that is not an event) or `unknown` (the token answered neither):
    tokens of the chain's token list are not stored, the list is read directly."""

    __tablename__ = "tokens"
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    symbol: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decimals: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_at: Mapped[float] = mapped_column(Float, default=0.0)


class CapsuleScore(Base):
    """Moderation and ranking inputs/outputs per capsule, recomputed by `ranking.refresh`.

    It also carries the capsule's immutable search attributes (chain, kind, creator, manifest
    CID, creation block, token id), copied when the capsule is indexed, so that search filters,
    sorts and counts on this one table through its indexes, and joins `capsules` and
    `manifests` only for the rows of the page it returns."""

    __tablename__ = "capsule_scores"
    capsule_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    # `moderation` and `kind` keep their own indexes on SQLite only: on PostgreSQL migration 0007
    # replaces them by `ix_capsule_scores_kind_search` (kind first, covering what search reads).
    moderation: Mapped[str] = mapped_column(String(24), default="ok", index=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    success_rate: Mapped[float] = mapped_column(Float, default=0.0)
    avg_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_avg: Mapped[float | None] = mapped_column(Float, nullable=True)
    rating_bayes: Mapped[float] = mapped_column(Float, default=0.0)
    audits_valid: Mapped[int] = mapped_column(Integer, default=0)
    min_price_per_mu: Mapped[int | None] = U(None)
    scope_names: Mapped[str] = mapped_column(Text, default="")
    chain_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    kind: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    creator: Mapped[str | None] = mapped_column(String(42), nullable=True, index=True)
    cid: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    created_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # One index per sort order, with the tie-breaker, so a page is read in index order.
    __table_args__ = (
        Index("ix_capsule_scores_rank_score", score.desc(), "capsule_id"),
        Index("ix_capsule_scores_rank_rating", rating_bayes.desc(), "capsule_id"),
        Index("ix_capsule_scores_rank_calls", calls.desc(), "capsule_id"),
        Index("ix_capsule_scores_rank_newest", "created_block", "token_id", "capsule_id"),
        # The `min_rating` / `max_price` filters: only rows with a value are indexed (migration 0005).
        Index(
            "ix_capsule_scores_rating_avg",
            rating_avg,
            postgresql_where=rating_avg.isnot(None),
            sqlite_where=rating_avg.isnot(None),
        ),
        Index(
            "ix_capsule_scores_min_price_per_mu",
            min_price_per_mu,
            postgresql_where=min_price_per_mu.isnot(None),
            sqlite_where=min_price_per_mu.isnot(None),
        ),
    )


SEARCH_ATTRIBUTES = ("chain_id", "kind", "creator", "cid", "created_block", "token_id")  # copied from capsules


JOURNALED = {
    t.__tablename__: t.__table__
    for t in (
        Capsule,
        LineageEdge,
        Terms,
        Credential,
        UsageChannel,
        MeterConfig,
        CapsuleUsage,
        NodeEpochUsage,
        RoyaltyVault,
        RoyaltyFlow,
        Node,
        EpochScore,
        Rating,
        Attestation,
        Did,
    )
}
