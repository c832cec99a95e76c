"""search attributes and sort indexes on capsule_scores

Copies each capsule's immutable search attributes (chain, kind, creator, manifest CID,
creation block, token id) into `capsule_scores` and adds one index per sort order (with the
tie-breaker), so that search filters, sorts and counts on one table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = [("chain_id", sa.BigInteger()), ("kind", sa.Integer()), ("creator", sa.String(42)), ("cid", sa.String(80)),
           ("created_block", sa.BigInteger()), ("token_id", sa.BigInteger())]


def upgrade() -> None:
    with op.batch_alter_table("capsule_scores") as b:
        for name, type_ in COLUMNS:
            b.add_column(sa.Column(name, type_, nullable=True))
        b.drop_index("ix_capsule_scores_score")
        b.drop_index("ix_capsule_scores_rating_bayes")
    sets = ", ".join(f"{n} = (SELECT c.{n} FROM capsules c WHERE c.id = capsule_scores.capsule_id)" for n, _ in COLUMNS)
    op.execute(f"UPDATE capsule_scores SET {sets}")
    op.create_index("ix_capsule_scores_kind", "capsule_scores", ["kind"])
    op.create_index("ix_capsule_scores_creator", "capsule_scores", ["creator"])
    op.create_index("ix_capsule_scores_cid", "capsule_scores", ["cid"])
    op.create_index("ix_capsule_scores_rank_score", "capsule_scores", [sa.text("score DESC"), "capsule_id"])
    op.create_index("ix_capsule_scores_rank_rating", "capsule_scores", [sa.text("rating_bayes DESC"), "capsule_id"])
    op.create_index("ix_capsule_scores_rank_calls", "capsule_scores", [sa.text("calls DESC"), "capsule_id"])
    op.create_index("ix_capsule_scores_rank_newest", "capsule_scores", ["created_block", "token_id", "capsule_id"])


def downgrade() -> None:
    for ix in ("kind", "creator", "cid", "rank_score", "rank_rating", "rank_calls", "rank_newest"):
        op.drop_index(f"ix_capsule_scores_{ix}", table_name="capsule_scores")
    with op.batch_alter_table("capsule_scores") as b:
        for name, _ in COLUMNS:
            b.drop_column(name)
        b.create_index("ix_capsule_scores_score", ["score"])
        b.create_index("ix_capsule_scores_rating_bayes", ["rating_bayes"])
