"""Import rate of a 10k-image COCO file (10 boxes per image) into PostgreSQL and SQLite, and of
the same dataset as one Hugging Face Parquet file (images embedded, `objects` in the hub's layout),
with its rate as a ratio of COCO's measured in the same process.

The images are already on disk: 10k distinct small PNGs (32x24, every one different bytes) are
generated once into a cache folder. The timing covers the whole import: reading and fully
decoding every image (storage.check_image), checking every box, writing the files to the store,
and the one bulk-insert transaction. A second import of the same files into another project of
the same database measures the case where the images are already in the store.

    python bench/bench_import.py [--n 10000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image as PILImage  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from backend.config import Settings  # noqa: E402
from backend.db import make_engine, make_sessionmaker, migrate  # noqa: E402
from backend.formats.base import DirSource  # noqa: E402
from backend.importer import commit_dataset, parse  # noqa: E402
from backend.models import Project  # noqa: E402
from backend.storage import ImageStore  # noqa: E402

W, H, BOXES = 32, 24, 10


def build(root: Path, n: int) -> Path:
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = img_dir / f"{i:06d}.png"
        if not p.exists():
            im = PILImage.new("RGB", (W, H), (i % 256, (i // 256) % 256, (i // 65536) % 256))
            im.save(p, "PNG")
    rng = random.Random(0)
    images, anns = [], []
    for i in range(n):
        images.append({"id": i + 1, "file_name": f"{i:06d}.png", "width": W, "height": H})
        for _ in range(BOXES):
            x, y = rng.uniform(0, W - 4), rng.uniform(0, H - 4)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": rng.randint(1, 5),
                         "bbox": [x, y, rng.uniform(1, W - x), rng.uniform(1, H - y)]})
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, 6)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    build_parquet(root, images, anns, [c["name"] for c in cats])
    return root


def build_parquet(root: Path, images: list, anns: list, names: list[str]) -> None:
    """The same images and boxes as `data/train-00000-of-00001.parquet` (cppe-5's layout)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = root / "parquet" / "data" / "train-00000-of-00001.parquet"
    if out.exists():
        return
    objs: dict[int, dict] = {im["id"]: {"bbox": [], "category": []} for im in images}
    for a in anns:
        objs[a["image_id"]]["bbox"].append(a["bbox"])
        objs[a["image_id"]]["category"].append(a["category_id"] - 1)
    rows = [{"image_id": im["id"], "image": {"bytes": (root / "images" / im["file_name"]).read_bytes(),
                                             "path": im["file_name"]},
             "width": im["width"], "height": im["height"], "objects": objs[im["id"]]} for im in images]
    features = {"objects": {"feature": {"bbox": {"feature": {"dtype": "float64", "_type": "Value"}, "_type": "Sequence"},
                                        "category": {"names": names, "_type": "ClassLabel"}}, "_type": "Sequence"}}
    t = pa.Table.from_pylist(rows).replace_schema_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})})
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, out, row_group_size=1000)


FORMATS = (("coco", "", "annotations.json"), ("hf_parquet", "parquet", None))


def run(url: str, src: Path, label: str) -> None:
    migrate(url)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    rates: dict[tuple[str, str], float] = {}
    for fmt, sub, focus in FORMATS:
        with tempfile.TemporaryDirectory() as data:  # each format starts from an empty store
            settings = Settings(data_dir=Path(data), database_url=url)
            store = ImageStore(Path(data))
            for attempt in ("new files", "files already in store"):
                with sm() as s:
                    p = Project(name=f"bench {fmt} {attempt}")
                    s.add(p)
                    s.commit()
                    t0 = time.perf_counter()
                    ds = parse(fmt, DirSource(src / sub if sub else src, focus=focus), settings)
                    t1 = time.perf_counter()
                    rep = commit_dataset(s, store, p.id, ds, fmt)
                    t2 = time.perf_counter()
                n = rep.images_added
                rates[fmt, attempt] = n / (t2 - t0)
                print(f"{label:10s} {fmt:10s} {attempt:22s} {n} images, {rep.boxes_added} boxes: total "
                      f"{t2 - t0:6.2f} s = {n / (t2 - t0):7.0f} images/s  (parse+decode {t1 - t0:5.2f} s, "
                      f"store+insert {t2 - t1:5.2f} s)")
    for attempt in ("new files", "files already in store"):
        print(f"{label:10s} Parquet / COCO rate, {attempt}: {rates['hf_parquet', attempt] / rates['coco', attempt]:.2f}x")
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "vlm_bench_import"))
    args = ap.parse_args()
    t = time.perf_counter()
    src = build(Path(args.cache) / str(args.n), args.n)
    print(f"dataset ready in {time.perf_counter() - t:.1f} s: {args.n} distinct {W}x{H} PNGs on disk, "
          f"{args.n * BOXES} boxes, at {src}")

    with tempfile.TemporaryDirectory() as d:
        run(f"sqlite:///{d}/bench.db", src, "SQLite")

    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # no server: report it, the SQLite number still stands
        print(f"PostgreSQL   skipped: {args.pg} not reachable ({type(e).__name__})")
        return
    try:
        run(args.pg.rsplit("/", 1)[0] + "/" + name, src, "PostgreSQL")
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
