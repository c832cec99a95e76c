"""full-text search over manifests

SQLite: an FTS5 table `manifest_fts` (external content = `manifests`) kept in sync by
triggers. PostgreSQL: a generated `search_vector` tsvector column with a GIN index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FIELDS = "name, description, tags, body"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE manifest_fts USING fts5("
            "name, description, tags, body, content='manifests', content_rowid='rowid', tokenize='porter unicode61')"
        )
        op.execute(f"""CREATE TRIGGER manifests_ai AFTER INSERT ON manifests BEGIN
            INSERT INTO manifest_fts(rowid, {FIELDS}) VALUES (new.rowid, new.name, new.description, new.tags, new.body);
        END""")
        op.execute(f"""CREATE TRIGGER manifests_ad AFTER DELETE ON manifests BEGIN
            INSERT INTO manifest_fts(manifest_fts, rowid, {FIELDS})
            VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.body);
        END""")
        op.execute(f"""CREATE TRIGGER manifests_au AFTER UPDATE ON manifests BEGIN
            INSERT INTO manifest_fts(manifest_fts, rowid, {FIELDS})
            VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.body);
            INSERT INTO manifest_fts(rowid, {FIELDS}) VALUES (new.rowid, new.name, new.description, new.tags, new.body);
        END""")
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE manifests ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(tags, '')), 'B') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'B') || "
            "setweight(to_tsvector('english', coalesce(body, '')), 'C')) STORED"
        )
        op.execute("CREATE INDEX ix_manifests_search_vector ON manifests USING GIN (search_vector)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for t in ("manifests_ai", "manifests_ad", "manifests_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {t}")
        op.execute("DROP TABLE IF EXISTS manifest_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_manifests_search_vector")
        op.execute("ALTER TABLE manifests DROP COLUMN IF EXISTS search_vector")
