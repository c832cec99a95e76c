"""manifest cards and token metadata: `manifests.card` (the model/dataset card the catalog page
shows, JSON) and `tokens` (symbol and decimals of each payment token, from the token list or a
one-time eth_call)

Manifests fetched before this revision are queued again (`status` back to `pending`) so that
the worker fills their card; their name, description and search text stay until it does.

Revision ID: 0005_cards
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_cards"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (no batch copy on SQLite: the FTS5 table's triggers and rowids stay)
    op.add_column("manifests", sa.Column("card", sa.Text(), nullable=False, server_default=""))
    op.execute("UPDATE manifests SET status = 'pending', next_attempt_at = 0, attempts = 0 WHERE status = 'ok'")
    op.create_table(
        "tokens",
        sa.Column("chain_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("symbol", sa.String(32), nullable=True),
        sa.Column("decimals", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_column("manifests", "card")
