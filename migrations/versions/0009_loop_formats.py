"""issue 15: the loop: review queue items (a run's worst / most uncertain images) and run lineage

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("parent_run_id", sa.Integer(), nullable=True))
        b.create_foreign_key(op.f("fk_runs_parent_run_id_runs"), "runs", ["parent_run_id"], ["id"], ondelete="SET NULL")
        b.create_index(op.f("ix_runs_parent_run_id"), ["parent_run_id"])
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_review_items_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_review_items_run_id_runs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_review_items_image_id_images"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        sa.UniqueConstraint("run_id", "image_id", name=op.f("uq_review_items_run_id")),
    )
    op.create_index("ix_review_items_project_run_rank", "review_items", ["project_id", "run_id", "rank"])
    op.create_index(op.f("ix_review_items_image_id"), "review_items", ["image_id"])


def downgrade() -> None:
    op.drop_table("review_items")
    with op.batch_alter_table("runs") as b:
        b.drop_index("ix_runs_parent_run_id")
        b.drop_constraint("fk_runs_parent_run_id_runs", type_="foreignkey")
        b.drop_column("parent_run_id")
