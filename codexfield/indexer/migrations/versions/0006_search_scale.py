"""search at scale: the full-text vector on capsule_scores, indexes for rating and price filters

* PostgreSQL: `capsule_scores.search_vector` holds a copy of the manifest's generated
  `manifests.search_vector` (a capsule names one manifest by CID), with a GIN index, so that
  a full-text search filters, sorts and counts on `capsule_scores` alone like every other
  search: the planner can combine the text with `kind`, `creator`, ... (BitmapAnd, or one
  index in sort order with the rest as filters) instead of joining manifests row by row.
  Two statement-level triggers keep the copy (set-based, over the statement's transition
  table): rows inserted into `capsule_scores` take their manifest's vector; a manifest whose
  vector changes (fetched, re-indexed) passes it to its capsules. The GIN indexes are built
  with `fastupdate = off`: with the default, new entries wait in an unordered pending list
  (up to `gin_pending_list_limit`, 4 MB) that every full-text query scans until a vacuum
  merges it (measured 8–12 ms per query at 100,000 capsules, against well under 1 ms merged).
  The manifests' own GIN index, no longer read by any query, is dropped.
* Both dialects: partial indexes on `capsule_scores.rating_avg` and `min_price_per_mu` (rows
  with a value only), so `min_rating` / `max_price` searches read the few capsules with
  ratings or prices instead of every capsule of a kind.

SQLite keeps its FTS5 table (`manifest_fts`).

Revision ID: 0006_search
Revises: 0005_cards
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_search"
down_revision = "0005_cards"
branch_labels = None
depends_on = None

PARTIAL = ("rating_avg", "min_price_per_mu")

PG_UP = [
    "ALTER TABLE capsule_scores ADD COLUMN search_vector tsvector",
    "UPDATE capsule_scores s SET search_vector = m.search_vector FROM manifests m "
    "WHERE m.cid = s.cid AND m.search_vector <> ''::tsvector",
    "CREATE INDEX ix_capsule_scores_search_vector ON capsule_scores USING GIN (search_vector) WITH (fastupdate = off)",
    "DROP INDEX IF EXISTS ix_manifests_search_vector",
    """CREATE FUNCTION codexfield_scores_take_manifest_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE capsule_scores s SET search_vector = m.search_vector
    FROM new_rows n JOIN manifests m ON m.cid = n.cid
    WHERE s.capsule_id = n.capsule_id AND m.search_vector <> ''::tsvector;
    RETURN NULL;
END $$""",
    """CREATE FUNCTION codexfield_manifests_give_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE capsule_scores s SET search_vector = n.search_vector
    FROM new_rows n
    WHERE s.cid = n.cid AND s.search_vector IS DISTINCT FROM n.search_vector;
    RETURN NULL;
END $$""",
    # AFTER INSERT transition tables hold only the rows really inserted (not those an
    # `ON CONFLICT DO UPDATE` turned into updates): ranking.refresh's upserts cost nothing here.
    "CREATE TRIGGER capsule_scores_take_vector AFTER INSERT ON capsule_scores REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION codexfield_scores_take_manifest_vector()",
    "CREATE TRIGGER manifests_give_vector_ins AFTER INSERT ON manifests REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION codexfield_manifests_give_vector()",
    "CREATE TRIGGER manifests_give_vector_upd AFTER UPDATE ON manifests REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION codexfield_manifests_give_vector()",
]

PG_DOWN = [
    "DROP TRIGGER IF EXISTS manifests_give_vector_upd ON manifests",
    "DROP TRIGGER IF EXISTS manifests_give_vector_ins ON manifests",
    "DROP TRIGGER IF EXISTS capsule_scores_take_vector ON capsule_scores",
    "DROP FUNCTION IF EXISTS codexfield_manifests_give_vector()",
    "DROP FUNCTION IF EXISTS codexfield_scores_take_manifest_vector()",
    "CREATE INDEX ix_manifests_search_vector ON manifests USING GIN (search_vector)",
    "DROP INDEX IF EXISTS ix_capsule_scores_search_vector",
    "ALTER TABLE capsule_scores DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_UP:
            op.execute(stmt)
    for col in PARTIAL:
        op.create_index(f"ix_capsule_scores_{col}", "capsule_scores", [col],
                        postgresql_where=sa.text(f"{col} IS NOT NULL"), sqlite_where=sa.text(f"{col} IS NOT NULL"))


def downgrade() -> None:
    for col in PARTIAL:
        op.drop_index(f"ix_capsule_scores_{col}", table_name="capsule_scores")
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_DOWN:
            op.execute(stmt)
