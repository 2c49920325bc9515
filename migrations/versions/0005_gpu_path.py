"""issue 10: GPU path (adapter_bytes 64-bit: an adapter with modules_to_save=["lm_head"] is ~2.4 GB)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table, PostgreSQL alters the column type in place
    with op.batch_alter_table('runs') as batch:
        batch.alter_column('adapter_bytes', existing_type=sa.Integer(), type_=sa.BigInteger(),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.alter_column('adapter_bytes', existing_type=sa.BigInteger(), type_=sa.Integer(),
                           existing_nullable=True)
