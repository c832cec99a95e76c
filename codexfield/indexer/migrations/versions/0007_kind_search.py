"""search by kind at scale: a covering index for full text + kind (PostgreSQL)

A full-text search with a broad word and a `kind` counts its first `TOTAL_CAP + 1` matches.
Without this index that is a sequential scan of `capsule_scores` testing the text and the
kind on every row (≈39,000 rows at 2.6% selectivity, ≈3,300 heap pages: the table holds the
tsvector and, after the rankings refreshes, dead space), or a BitmapAnd whose GIN prefix scan
grows with the catalog (≈0.26 µs per posting, 180,000 postings for a broad word at 1,000,000
capsules). A composite GIN index (`btree_gin`: `kind`, `search_vector`) would do the same
prefix scan, so it was not taken.

`ix_capsule_scores_kind_search` is a btree on (`kind`, `created_block`, `token_id`,
`capsule_id`) that INCLUDEs what a search reads of a row (`moderation`, `search_vector` and
the other sort keys): PostgreSQL answers the count with an Index Only Scan of the kind's
entries, testing the text on the index tuples (≈5,500 entries, ≈180 pages, whatever the
catalog size), and "kind + newest" pages by an Index Only Scan Backward of the same range.
The index's leading `kind` also serves every other `kind` filter, so the single-column
`ix_capsule_scores_kind` goes, and so does `ix_capsule_scores_moderation`, which no query
reads (search filters `moderation NOT IN (...)`, which a btree does not serve): each new or
re-scored capsule then maintains one index more and two fewer (ingest writes a score row per
minted capsule, `ranking.refresh` rewrites the changed ones). SQLite has no `search_vector`
(its full text is FTS5) and keeps its indexes.

Revision ID: 0007_kind_search
Revises: 0006_search
Create Date: 2026-12-01
"""
from alembic import op

revision = "0007_kind_search"
down_revision = "0006_search"
branch_labels = None
depends_on = None

INDEX = "ix_capsule_scores_kind_search"


SUPERSEDED = {"ix_capsule_scores_kind": "kind", "ix_capsule_scores_moderation": "moderation"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {INDEX} ON capsule_scores (kind, created_block, token_id, capsule_id) "
            "INCLUDE (moderation, search_vector, score, rating_bayes, calls)"
        )
        for name in SUPERSEDED:
            op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, col in SUPERSEDED.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON capsule_scores ({col})")
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
