"""meter_configs: the UsageMeter's MeterConfigured event (epochs without reading the chain)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meter_configs",
        sa.Column("chain_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("meter", sa.String(42), nullable=False),
        sa.Column("epoch_length", sa.BigInteger(), nullable=False),
        sa.Column("genesis", sa.BigInteger(), nullable=False),
        sa.Column("settlement_window", sa.BigInteger(), nullable=False),
        sa.Column("withdrawal_thaw", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("meter_configs")
