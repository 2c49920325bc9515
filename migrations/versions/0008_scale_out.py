"""issue 14: scale-out (snapshot rows, per-image results)

Snapshots become rows (snapshot_images / snapshot_boxes / snapshot_qa; `content` keeps only the
labels and splits) and a run's per-image detection stats become run_image_results rows, so the
gallery sorts, filters and pages in SQL. Existing JSON snapshots and metrics.per_image are moved.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None
STATS = ("tp", "fp", "fn", "wrong_label", "f1", "mean_iou")


def upgrade() -> None:
    op.create_table(
        "snapshot_images",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ext", sa.String(length=8), nullable=False),
        sa.Column("file_name", sa.String(length=512), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"], name=op.f("fk_snapshot_images_snapshot_id_snapshots"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("snapshot_id", "image_id", name=op.f("pk_snapshot_images")),
    )
    op.create_table(
        "snapshot_boxes",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("box_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"], name=op.f("fk_snapshot_boxes_snapshot_id_snapshots"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("snapshot_id", "box_id", name=op.f("pk_snapshot_boxes")),
    )
    op.create_index("ix_snapshot_boxes_image", "snapshot_boxes", ["snapshot_id", "image_id", "label"])
    op.create_table(
        "snapshot_qa",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("qa_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=128), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"], name=op.f("fk_snapshot_qa_snapshot_id_snapshots"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("snapshot_id", "qa_id", name=op.f("pk_snapshot_qa")),
    )
    op.create_index("ix_snapshot_qa_image", "snapshot_qa", ["snapshot_id", "image_id"])
    cols = [sa.Column("run_id", sa.Integer(), nullable=False), sa.Column("image_id", sa.Integer(), nullable=False),
            sa.Column("split", sa.String(length=64), nullable=True)]
    for phase in ("before", "after"):
        cols += [sa.Column(f"{k}_{phase}", sa.Integer(), nullable=True) for k in ("tp", "fp", "fn", "wrong_label")]
        cols += [sa.Column(f"{k}_{phase}", sa.Float(), nullable=True) for k in ("f1", "mean_iou")]
    op.create_table(
        "run_image_results", *cols, sa.Column("change", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_image_results_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "image_id", name=op.f("pk_run_image_results")),
    )
    op.create_index("ix_run_image_results_change", "run_image_results", ["run_id", "change", "image_id"])
    _move_json()


def _move_json() -> None:
    """Existing snapshots' JSON images -> rows; runs' metrics.per_image -> run_image_results."""
    conn = op.get_bind()
    meta = sa.MetaData()
    snaps = sa.Table("snapshots", meta, autoload_with=conn)
    runs = sa.Table("runs", meta, autoload_with=conn)
    si, sb, sq, rr = (sa.Table(n, meta, autoload_with=conn)
                      for n in ("snapshot_images", "snapshot_boxes", "snapshot_qa", "run_image_results"))
    splits: dict[int, dict[int, str | None]] = {}
    for sid, content in conn.execute(sa.select(snaps.c.id, snaps.c.content)).all():
        content = json.loads(content) if isinstance(content, str) else (content or {})
        images = content.get("images") or []
        splits[sid] = {im["id"]: im.get("split") for im in images}
        if images:
            conn.execute(si.insert(), [{"snapshot_id": sid, "image_id": im["id"], "sha256": im["sha256"], "ext": im["ext"],
                                        "file_name": im["file_name"], "width": im["width"], "height": im["height"],
                                        "split": im.get("split")} for im in images])
            boxes = [{"snapshot_id": sid, "box_id": n, "image_id": im["id"], "label": b[0], "x1": b[1], "y1": b[2],
                      "x2": b[3], "y2": b[4]} for n, (im, b) in enumerate((im, b) for im in images for b in im["boxes"])]
            if boxes:
                conn.execute(sb.insert(), boxes)
            qa = [{"snapshot_id": sid, "qa_id": q[0], "image_id": im["id"], "family": q[1], "template_id": q[2],
                   "question": q[3], "answer": q[4], "params": q[5] if isinstance(q[5], dict) else json.loads(q[5] or "{}")}
                  for im in images for q in im.get("qa", [])]
            if qa:
                conn.execute(sq.insert(), qa)
        conn.execute(snaps.update().where(snaps.c.id == sid).values(
            content={"labels": content.get("labels", []), "splits": content.get("splits", [])}))
    for rid, sid, metrics in conn.execute(sa.select(runs.c.id, runs.c.snapshot_id, runs.c.metrics)).all():
        metrics = json.loads(metrics) if isinstance(metrics, str) else (metrics or {})
        per = metrics.pop("per_image", None)
        if not per:
            continue
        rows: dict[int, dict] = {}
        for phase in ("before", "after"):
            for r in per.get(phase) or []:
                row = rows.setdefault(r["image_id"], {"run_id": rid, "image_id": r["image_id"],
                                                      "split": splits.get(sid, {}).get(r["image_id"])})
                for k in STATS:
                    row[f"{k}_{phase}"] = r.get(k)
        for row in rows.values():
            for phase in ("before", "after"):
                for k in STATS:
                    row.setdefault(f"{k}_{phase}", None)
            row["change"] = (row["f1_after"] - row["f1_before"]
                             if row["f1_after"] is not None and row["f1_before"] is not None else None)
        conn.execute(rr.insert(), list(rows.values()))
        conn.execute(runs.update().where(runs.c.id == rid).values(metrics=metrics))


def downgrade() -> None:
    op.drop_index("ix_run_image_results_change", table_name="run_image_results")
    op.drop_table("run_image_results")
    op.drop_index("ix_snapshot_qa_image", table_name="snapshot_qa")
    op.drop_table("snapshot_qa")
    op.drop_index("ix_snapshot_boxes_image", table_name="snapshot_boxes")
    op.drop_table("snapshot_boxes")
    op.drop_table("snapshot_images")
