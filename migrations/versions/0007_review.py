"""issue 13: review (QA staleness: the signature of the image's boxes a pair was generated from)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('qa_pairs', sa.Column('boxes_sig', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('qa_pairs') as b:
        b.drop_column('boxes_sig')
