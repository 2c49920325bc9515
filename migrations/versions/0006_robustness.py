"""issue 11: robustness (normalised label name unique index, ...)

labels.name_key: the Unicode-normalised, case-folded name (backend.models.label_key), unique per
project, so "Kart" / "kart" / "KART" cannot both exist even when created at the same moment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00
"""
import unicodedata

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _key(name: str) -> str:  # backend.models.label_key as of this revision (a migration must not change later)
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def upgrade() -> None:
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=400), nullable=True))
    conn = op.get_bind()
    seen: set[tuple[int, str]] = set()
    for lid, pid, name in conn.execute(sa.text("SELECT id, project_id, name FROM labels ORDER BY id")).all():
        key = _key(name)
        if (pid, key) in seen:
            # Only non-ASCII case variants could slip past the old check; keep both, renamed apart.
            name = f"{name[:88]} (label {lid})"
            key = _key(name)
            conn.execute(sa.text("UPDATE labels SET name = :n WHERE id = :i"), {"n": name, "i": lid})
        seen.add((pid, key))
        conn.execute(sa.text("UPDATE labels SET name_key = :k WHERE id = :i"), {"k": key, "i": lid})
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.alter_column('name_key', existing_type=sa.String(length=400), nullable=False)
        batch_op.create_unique_constraint('uq_labels_project_name_key', ['project_id', 'name_key'])


def downgrade() -> None:
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_constraint('uq_labels_project_name_key', type_='unique')
        batch_op.drop_column('name_key')
