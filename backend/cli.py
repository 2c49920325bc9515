"""`studio`: the command line. Every command uses the same settings as the server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from backend.config import Settings, get_settings

app = typer.Typer(help="VLM Studio: adapt vision-language models to your own images.", no_args_is_help=True)


@app.callback()
def _settings_first() -> None:
    """A bad STUDIO_* variable stops every command with its name and what is wrong, not a traceback."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as e:
        for err in e.errors():
            name = "STUDIO_" + "_".join(map(str, err["loc"])).upper()
            typer.echo(f"invalid setting {name}: {err['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(2) from None


def _prepare() -> str:
    """Migrate the database and make sure the admin exists; return the admin token."""
    from backend.auth import bootstrap_admin
    from backend.db import make_engine, make_sessionmaker, migrate, session_scope

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    migrate(url)
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            return bootstrap_admin(s, settings.data_dir)
    finally:
        engine.dispose()


@contextmanager
def studio_session() -> Iterator[tuple]:
    """(session, settings) on the configured, migrated database, in one transaction (commit at the
    end, rollback on error); a StudioError becomes `error (<status>): <message>` and exit code 1."""
    from backend.db import make_engine, make_sessionmaker, session_scope
    from backend.errors import StudioError

    settings = get_settings()
    _prepare()
    engine = make_engine(settings.resolved_database_url())
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield session, settings
    except StudioError as e:
        typer.echo(f"error ({e.status_code}): {e.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@app.command()
def migrate() -> None:
    """Upgrade the database to the newest schema."""
    _prepare()
    typer.echo("database is at the newest migration")


@app.command()
def serve(host: str = typer.Option(None), port: int = typer.Option(None),
          workers: int = typer.Option(None, min=1, help="API processes (default: STUDIO_WORKERS, 1); more than one "
                                      "uses several cores on PostgreSQL")) -> None:
    """Start the API (and the built front end) on the configured database."""
    import uvicorn

    from backend.main import create_app

    settings = get_settings()
    token = _prepare()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    typer.echo(f"VLM Studio at http://{host}:{port}/  (data: {settings.data_dir.resolve()})")
    typer.echo(f"admin API token: {token}")
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    else:  # each worker process builds its app from the same environment
        uvicorn.run("backend.main:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


@app.command()
def up(host: str = typer.Option(None), port: int = typer.Option(None),
       worker: bool = typer.Option(True, help="also start a worker (queues gpu,cpu) in a subprocess"),
       demo: bool = typer.Option(False, "--demo", help="also launch the demo's train run when the demo model "
                                 "is ready: watch it live on the project's Runs page"),
       empty: bool = typer.Option(False, "--empty", help="a fresh data dir stays empty (no demo project, no "
                                  "demo model build)")) -> None:
    """Start the studio on the embedded default: SQLite and the broker in the data directory, the API
    and one worker; no server to install. A fresh data dir opens on a ready demo project (real
    SuperTuxKart frames imported, split by track, QA generated) while the demo model builds on the
    worker."""
    import threading
    import time

    from backend.demo import launch_when_ready, open_ready

    t0 = time.perf_counter()
    _prepare()  # migrate once, before two processes open the database
    settings = get_settings()
    pid = None if empty else open_ready(settings, log=typer.echo)
    if pid is not None:
        typer.echo(f"demo project ready {time.perf_counter() - t0:.1f} s after start")
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "worker", "--queues", "gpu,cpu"]) if worker else None
    # The demo's train run goes through the same queue as any run, so it shows up live in the browser.
    stop = threading.Event()
    demo_proc = None
    if demo:
        threading.Thread(target=launch_when_ready, args=(settings, pid), kwargs=dict(log=typer.echo, stop=stop),
                         name="demo-launch", daemon=True).start()
    # uvicorn re-raises a SIGTERM after its graceful shutdown; with the default handler the process
    # would die before the finally below stops the worker.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        serve(host=host, port=port, workers=None)
    finally:
        stop.set()
        for p in (demo_proc, proc):
            if p is None:
                continue
            p.send_signal(signal.SIGTERM)  # warm shutdown: a running task's message is re-delivered
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


@app.command("worker")
def worker_cmd(
    queues: str = typer.Option("gpu,cpu", "--queues", help="comma-separated: gpu (runs), cpu (imports, exports, QA)"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="runs at once (gpu: one per GPU)"),
    loglevel: str = typer.Option("info", "--loglevel"),
    gpus: str = typer.Option("", "--gpus", help="e.g. 0,1: one worker process per GPU, each seeing only its "
                             "own (CUDA_VISIBLE_DEVICES); without it every process would use cuda:0"),
) -> None:
    """Start a Celery worker on the configured broker. A worker process executes one run at a time
    (pool solo); --concurrency N > 1 forks N of them (prefork), as torch model loading is not
    thread-safe. Several workers on several machines can share one broker and database."""
    settings = get_settings()
    names = [q.strip() for q in queues.split(",") if q.strip()]
    bad = sorted(set(names) - {"gpu", "cpu"})
    if bad or not names:
        raise typer.BadParameter(f"unknown queue(s) {bad}; use gpu and/or cpu", param_hint="--queues")
    if gpus.strip():
        ids = [g.strip() for g in gpus.split(",") if g.strip()]
        if not ids or len(set(ids)) != len(ids) or not all(g.isdigit() for g in ids):
            raise typer.BadParameter(f"{gpus!r}: a comma-separated list of distinct GPU indices, e.g. 0,1",
                                     param_hint="--gpus")
        _prepare()  # migrate once, before the children open the database
        raise typer.Exit(_run_children(gpu_worker_specs(ids, ",".join(names), loglevel)))
    _prepare()
    os.environ.setdefault("STUDIO_TORCH_THREADS", str(max(1, (os.cpu_count() or 1) // concurrency)))
    from worker.celery_app import celery_app

    pool = "solo" if concurrency == 1 else ("prefork" if "gpu" in names else "threads")
    typer.echo(f"worker on {settings.resolved_broker_url().split('@')[-1]} queues {','.join(names)} pool {pool}")
    celery_app.worker_main(["worker", "-Q", ",".join(settings.queue_prefix + q for q in names), "-P", pool,
                            "-c", str(concurrency), "-l", loglevel, "-n", f"studio-{os.getpid()}@%h",
                            # the embedded transport has no broadcast exchange; nothing here needs one
                            "--without-gossip", "--without-mingle", "--without-heartbeat"])


def gpu_worker_specs(gpus: list[str], queues: str, loglevel: str) -> list[tuple[list[str], dict[str, str]]]:
    """(argv, environment) of one worker process per GPU: it sees only its GPU (as cuda:0), runs one
    run at a time, and gets its share of the CPU threads."""
    threads = str(max(1, (os.cpu_count() or 1) // len(gpus)))
    return [([sys.executable, "-m", "backend.cli", "worker", "--queues", queues, "--concurrency", "1",
              "--loglevel", loglevel],
             {**os.environ, "CUDA_VISIBLE_DEVICES": g, "STUDIO_DEVICE": "cuda", "STUDIO_TORCH_THREADS": threads})
            for g in gpus]


def _run_children(specs: list[tuple[list[str], dict[str, str]]]) -> int:
    """Start the processes, wait for them all; SIGTERM / Ctrl-C is passed on (a warm shutdown)."""
    procs = [subprocess.Popen(argv, env=env) for argv, env in specs]

    def stop(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        stop(signal.SIGINT, None)
        codes = [p.wait() for p in procs]
    return max(codes, default=0)


def _project_id(session, ref: str, create: bool) -> int:
    """A project by id or by (unique) name; with `create`, a missing name is created (admin as member)."""
    from sqlalchemy import select

    from backend.models import Membership, Project, Role, User

    if ref.isdigit() and session.get(Project, int(ref)) is not None:
        return int(ref)
    ids = session.scalars(select(Project.id).where(Project.name == ref)).all()
    if len(ids) > 1:
        raise typer.BadParameter(f"{len(ids)} projects are named {ref!r}; give the id", param_hint="--project")
    if ids:
        return ids[0]
    if not create:
        raise typer.BadParameter(f"no project {ref!r} (add --create to make it)", param_hint="--project")
    project = Project(name=ref)
    session.add(project)
    session.flush()
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is not None:
        session.add(Membership(project_id=project.id, user_id=admin.id, role=Role.admin))
    session.commit()
    typer.echo(f"created project {ref!r} (id {project.id})")
    return project.id


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="a directory, a zip, or one annotation file"),
    project: str = typer.Option(..., "--project", help="project name or id"),
    fmt: str = typer.Option(..., "--format", help="coco | yolo | voc | supertuxkart | detjson | hf_parquet | "
                            "labelstudio | cvat | msswift | llamafactory"),
    create: bool = typer.Option(False, "--create", help="create the project if it does not exist"),
) -> None:
    """Import images and boxes into a project, all or nothing, and print the report."""
    import json

    from tqdm import tqdm

    from backend.formats import get_format
    from backend.importer import image_count_hint, import_source, source_from_path
    from backend.storage import image_store

    with studio_session() as (session, settings):
        get_format(fmt)
        pid = _project_id(session, project, create)
        source = source_from_path(path, settings)
        # Each image is counted twice: once when checked, once when stored.
        with tqdm(total=2 * image_count_hint(source), unit="img", desc=f"import {fmt}") as bar:
            report = import_source(session, image_store(settings),
                                   settings, pid, fmt, source, progress=bar.update)
    typer.echo(json.dumps(report.as_dict(), indent=2))


@app.command()
def export(
    out: Path = typer.Argument(..., help="the zip to write"),
    project: str = typer.Option(..., "--project", help="project name or id"),
    fmt: str = typer.Option("coco", "--format", help="coco | yolo | voc | hf_parquet | labelstudio | cvat | msswift | "
                            "llamafactory"),
    split: str = typer.Option(None, "--split", help="only this split"),
    family: str = typer.Option(None, "--family", help="msswift / llamafactory: model family of the box syntax "
                               "(default qwen2_vl)"),
    image_status: str = typer.Option("not_rejected", "--image-status",
                                     help="not_rejected (default) | accepted | all | one status"),
) -> None:
    """Export a project's images and boxes as a zip."""
    from backend.exporter import export_zip
    from backend.formats import get_format
    from backend.storage import image_store

    with studio_session() as (session, settings):
        get_format(fmt, writable=True).configured(family)
        from backend import review_status

        review_status.statuses(image_status, "--image-status")
        pid = _project_id(session, project, False)
        tmp = out.with_name(out.name + ".part")  # a failed export leaves no half zip behind
        try:
            with open(tmp, "wb") as f:
                n = export_zip(session, image_store(settings), pid, fmt, f, split, family, image_status)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
    typer.echo(f"exported {n} images as {fmt} to {out}")


# ---------------------------------------------------------------- qa and split (backend/qa, backend/splits.py)
qa_app = typer.Typer(help="Question/answer pairs generated from the boxes.", no_args_is_help=True)
app.add_typer(qa_app, name="qa")


def _session_run(fn):
    """fn(session, settings) in one transaction (see studio_session)."""
    with studio_session() as (session, settings):
        return fn(session, settings)


@qa_app.command("generate")
def qa_generate(
    project: str = typer.Option(..., "--project", help="project name or id"),
    families: str = typer.Option("identity,counting,spatial,race,region,detection", "--families",
                                 help="comma-separated families"),
    seed: int = typer.Option(0, "--seed"),
    cap: int = typer.Option(None, "--cap", help="at most this many pairs per image and family"),
    negatives_ratio: float = typer.Option(0.5, "--negatives-ratio"),
    options: str = typer.Option("{}", "--options", help='JSON per family, e.g. \'{"spatial": {"max_pairs": 2}}\''),
) -> None:
    """Replace the project's generated pairs of these families; print the counts per family and split."""
    import json

    from backend.errors import InvalidInput
    from backend.qa import store

    try:
        opts = json.loads(options)
    except json.JSONDecodeError as e:
        raise typer.BadParameter(f"not JSON: {e}", param_hint="--options") from None
    if not isinstance(opts, dict):
        raise typer.BadParameter("a JSON object of family -> options", param_hint="--options")

    def run(session, _settings):
        if cap is not None and cap < 1:
            raise InvalidInput("per_image_cap (--cap): must be at least 1")
        pid = _project_id(session, project, False)
        return store.generate(session, pid, [f.strip() for f in families.split(",") if f.strip()], seed=seed,
                              per_image_cap=cap, negatives_ratio=negatives_ratio, options=opts)

    typer.echo(json.dumps(_session_run(run), indent=2))


@qa_app.command("export")
def qa_export(
    out: Path = typer.Argument(..., help="the .jsonl file to write"),
    project: str = typer.Option(..., "--project", help="project name or id"),
    family: str = typer.Option(None, "--family"),
    split: str = typer.Option(None, "--split", help="a split name or 'unassigned'"),
) -> None:
    """Write the project's QA pairs as JSONL (one pair per line)."""
    import json

    from backend.qa import store

    def run(session, _settings):
        pid = _project_id(session, project, False)
        tmp = out.with_name(out.name + ".part")  # no half file on failure
        n = 0
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                for row in store.export_rows(session, pid, family, split):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    n += 1
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        return n

    typer.echo(f"exported {_session_run(run)} QA pairs to {out}")


def _kv(items: list[str], hint: str, number: bool) -> dict:
    out: dict = {}
    for item in items:
        for part in item.split(","):
            k, sep, v = part.partition("=")
            if not sep or not k.strip() or not v.strip():
                raise typer.BadParameter(f"expected name=value, got {part!r}", param_hint=hint)
            if number:
                try:
                    out[k.strip()] = float(v)
                except ValueError:
                    raise typer.BadParameter(f"{v!r} is not a number", param_hint=hint) from None
            else:
                out.setdefault(k.strip(), []).append(v.strip())
    return out


@app.command("split")
def split_cmd(
    project: str = typer.Option(..., "--project", help="project name or id"),
    mode: str = typer.Option("group", "--mode", help="image | group | track"),
    key: str = typer.Option(None, "--key", help="meta key of the groups (default race_id; track mode: track)"),
    ratios: list[str] = typer.Option(None, "--ratios", help="e.g. train=0.8,val=0.1,test=0.1"),
    held_out: list[str] = typer.Option(None, "--held-out", help="track mode: split=track, repeatable"),
    seed: int = typer.Option(0, "--seed"),
    check: bool = typer.Option(False, "--check", help="only check the current split for leakage (exit 1 if it leaks)"),
) -> None:
    """Assign train/val/test splits to a project's images (or --check the current one)."""
    import json

    from backend import splits

    def run(session, _settings):
        pid = _project_id(session, project, False)
        if check:
            return splits.check(session, pid, key or "race_id")
        return splits.make_split(session, pid, mode, key=key, ratios=_kv(ratios, "--ratios", True) if ratios else None,
                                 held_out=_kv(held_out, "--held-out", False) if held_out else None, seed=seed)

    res = _session_run(run)
    typer.echo(json.dumps(res, indent=2))
    if check and not res["ok"]:
        raise typer.Exit(1)


# ---------------------------------------------------------------- offline demo (backend/demo.py, worker/demo_model.py)
datasets_app = typer.Typer(help="Datasets the studio can generate.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("synth-karts")
def synth_karts(
    out: Path = typer.Argument(..., help="folder to write (one sub-folder per synthetic theme)"),
    n: int = typer.Option(200, "--n", min=1, help="number of frames"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """SYNTHETIC racing scenes (not game frames) in the SuperTuxKart info.json layout: import them with
    `studio import OUT --format supertuxkart`."""
    from worker.synth_karts import write_dataset

    write_dataset(out, n, seed=seed)
    typer.echo(f"wrote {n} synthetic frames (SuperTuxKart info.json layout) to {out}")


@app.command()
def demo(
    data: Path = typer.Option(None, "--data", help="a folder in an import format instead of the shipped real frames"),
    fmt: str = typer.Option(None, "--format", help="coco | yolo | voc | supertuxkart | detjson (with --data)"),
    steps: int = typer.Option(None, "--steps", help="fine-tuning steps (default: the tuned recipe)"),
    max_eval_images: int = typer.Option(None, "--max-eval-images", help="evaluate on at most this many held-out images"),
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads for torch"),
) -> None:
    """The offline before/after demo: the shipped tiny PaliGemma (pre-trained on real SuperTuxKart frames
    of other tracks), LoRA fine-tuned on the shipped frames' tracks (or --data), evaluated on held-out
    tracks before and after."""
    from backend.demo import format_table, format_targets, run_demo
    from backend.errors import StudioError

    if fmt is not None and data is None:
        raise typer.BadParameter("--format goes with --data", param_hint="--format")
    overrides = {k: v for k, v in (("max_steps", steps), ("max_eval_images", max_eval_images)) if v is not None}
    try:
        res = run_demo(get_settings(), data=data, fmt=fmt or "supertuxkart", run_overrides=overrides,
                       threads=threads, log=typer.echo)
    except StudioError as e:
        typer.echo(f"error ({e.status_code}): {e.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"\nrun {res.run_id} of project {res.project_id}: {res.status}"
               + (f" ({res.error})" if res.error else ""))
    typer.echo("held-out split, pretrained (pre-trained on other tracks only) vs LoRA fine-tuned on the train split:")
    typer.echo(format_table(res))
    typer.echo(format_targets(res))
    typer.echo("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in res.seconds.items()))
    from backend.demo import BASE_NOTE

    typer.echo(BASE_NOTE + "The project's frames are " + ("real game frames." if data is None else f"from {data}."))
    typer.echo("Open it in the studio: `studio up`, then the project's Runs page.")
    if res.status != "succeeded":
        raise typer.Exit(1)


# ---------------------------------------------------------------- model catalogue (backend/catalog.py)
models_app = typer.Typer(help="The model catalogue: local models, the demo model, hub presets.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="the GET /api/models items as JSON")) -> None:
    """Every base model a run can start from, with family, size, parameters and status."""
    import json

    from backend.catalog import catalogue

    items = catalogue(get_settings())
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    for m in items:
        params = f"{m['parameters'] / 1e6:.1f} M params" if m.get("parameters") else "- params"
        typer.echo(f"{m['status']:<10} {m['source']:<5} {m['family'] or '?':<11} {_size(m.get('size_bytes')):>9} "
                   f"{params:>16}  {m['id']}" + (f"  ({m['note']})" if m.get("note") else ""))


@models_app.command("build")
def models_build(
    name: str = typer.Argument("demo", help="demo (re-train the demo base from scratch) or tiny-<family> (random, seconds)"),
    steps: int = typer.Option(None, "--steps", min=1, help="demo: pre-training steps (default: the tuned recipe)"),
    frames: Path = typer.Option(None, "--frames", help="demo: folder of SuperTuxKart track folders "
                                "(default: STUDIO_DEMO_FRAMES, else ../shared/supertuxkart)"),
    out: Path = typer.Option(None, "--out", help="demo with --inline: write the model here (e.g. backend/demo_data/model "
                             "to refresh the shipped weights) instead of <data>/models"),
    threads: int = typer.Option(None, "--threads", min=1, help="demo with --inline: CPU threads for torch"),
    wait: bool = typer.Option(False, "--wait", help="demo: follow the job until it ends"),
    inline: bool = typer.Option(False, "--inline", help="demo: build in this process instead of a worker"),
) -> None:
    """Build a model: re-train the demo base from scratch on real frames (the seeded script that made
    the shipped weights; an hour or more of CPU) as a job on the worker queue (like a run) or --inline,
    or a tiny random model of a family (worker/tiny.py, for trying the pipeline)."""
    import time

    from backend import catalog

    settings = get_settings()
    _prepare()
    if name.startswith("tiny-"):
        from worker.tiny import BUILDERS, build_tiny

        family = name[len("tiny-"):]
        if family not in BUILDERS:
            raise typer.BadParameter(f"unknown family {family!r}; one of {', '.join(BUILDERS)}", param_hint="NAME")
        out = build_tiny(family, catalog.models_dir(settings) / name)
        typer.echo(f"built {out} (random weights: it answers nothing useful, for trying the pipeline)")
        return
    if name != catalog.DEMO_JOB:
        raise typer.BadParameter(f"unknown model {name!r}: demo or tiny-<family>", param_hint="NAME")
    recipe = {"steps": steps} if steps else None
    if out is not None:
        if not inline:
            raise typer.BadParameter("--out goes with --inline", param_hint="--out")
        import torch

        from worker.demo_model import Recipe, build_pretrained

        if threads:
            torch.set_num_threads(threads)
        r = Recipe.from_overrides({**settings.demo_recipe, **(recipe or {})})
        build_pretrained(out, r, frames or settings.demo_frames, log=typer.echo)
        return
    if frames is not None:
        if not inline:
            raise typer.BadParameter("--frames goes with --inline (a worker reads STUDIO_DEMO_FRAMES)",
                                     param_hint="--frames")
        settings = settings.model_copy(update={"demo_frames": frames})
    if inline:
        from worker.model_tasks import build_model

        catalog.write_job(settings, name, state="queued", log=[], error=None, progress=0.0)
        state = build_model(settings, name, recipe)  # it lays recipe over settings.demo_recipe
    else:
        job = catalog.queue_demo_build(settings, recipe)
        typer.echo(f"demo model build {job['state']} (GET /api/models/jobs/demo); a worker builds it")
        if not wait:
            return
        seen = 0
        while True:
            job = catalog.read_job(settings, name) or {}
            for line in (job.get("log") or [])[seen:]:
                typer.echo(line)
            seen = len(job.get("log") or [])
            if job.get("state") in ("succeeded", "failed"):
                break
            time.sleep(2)
        state = job["state"]
    job = catalog.read_job(settings, name) or {}
    typer.echo(f"demo model: {state}" + (f" -> {job.get('path')}" if state == "succeeded" else f": {job.get('error')}"))
    if state != "succeeded":
        raise typer.Exit(1)


@models_app.command("import")
def models_import(
    src: Path = typer.Argument(..., help="a save_pretrained folder (config.json and weights)"),
    name: str = typer.Option(None, "--name", help="folder name under <data>/models (default: the source's)"),
) -> None:
    """Copy a local model folder into the catalogue (<data>/models/NAME), checking its family."""
    import shutil

    from backend import catalog

    settings = get_settings()
    d = catalog.describe_folder(src)
    if d is None:
        raise typer.BadParameter(f"{src} is not a save_pretrained folder (no readable config.json)", param_hint="SRC")
    if d["family"] is None:
        raise typer.BadParameter(d["note"], param_hint="SRC")
    dest = catalog.models_dir(settings) / (name or src.resolve().name)
    if dest.exists():
        raise typer.BadParameter(f"{dest} exists already; pick another --name", param_hint="--name")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    tmp.rename(dest)  # a half copy is never listed
    typer.echo(f"imported {d['family']} model ({_size(d['size_bytes'])}) as {dest}")


# ---------------------------------------------------------------- runs (backend/runs.py, worker/runner.py)
def _read_config(path: Path) -> dict:
    import json

    import yaml

    try:
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise typer.BadParameter(f"cannot read {path}: {e}", param_hint="CONFIG") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: the config must be a mapping of options", param_hint="CONFIG")
    return data


def _follow(run_id: int, settings: Settings) -> dict:
    """A tqdm bar over the run's progress until it ends; returns the final run view."""
    import time

    from tqdm import tqdm

    from backend.db import make_engine, make_sessionmaker
    from backend.models import FINISHED, Run
    from backend.runs import reap_run, run_view

    engine = make_engine(settings.resolved_database_url())
    sm = make_sessionmaker(engine)
    try:
        with tqdm(total=100, unit="%", desc=f"run {run_id}") as bar:
            while True:
                with sm() as s:
                    run = s.get(Run, run_id)
                    reap_run(s, settings, run)
                    v, done = run_view(run), run.status in FINISHED
                bar.n = round(100 * v["progress"])
                bar.set_postfix_str(f"{v['status']} {v['phase'] or ''} step {v['step']}/{v['total_steps'] or '?'}")
                if done:
                    return v
                time.sleep(1)
    finally:
        engine.dispose()


def _launch(kind: str, config: Path, project: str, wait: bool, inline: bool) -> None:
    import threading

    from sqlalchemy import select

    from backend.models import User
    from backend.runs import create_run

    cfg = _read_config(config)
    with studio_session() as (session, settings):
        pid = _project_id(session, project, False)
        admin = session.scalar(select(User).where(User.username == "admin"))
        run = create_run(session, settings, project_id=pid, user_id=admin.id if admin else None, kind=kind,
                         config=cfg)
        run_id = run.id
    typer.echo(f"{kind} run {run_id} queued (GET /api/runs/{run_id})")
    if not (wait or inline):
        return
    if inline:  # execute here instead of a worker (no worker needed)
        from worker.runner import execute

        threading.Thread(target=execute, args=(run_id, settings), daemon=True).start()
    v = _follow(run_id, settings)
    for row in v["metrics"].get("table", []):
        fmt = lambda x: "—" if x is None else f"{x:.4f}"  # noqa: E731
        typer.echo(f"{row['metric']:<32} {fmt(row['pretrained']):>8} {fmt(row['finetuned']):>8} {fmt(row['delta']):>8}")
    typer.echo(f"run {run_id}: {v['status']}" + (f": {v['error']}" if v["error"] else ""))
    if v["status"] != "succeeded":
        raise typer.Exit(1)


_CONFIG = typer.Argument(..., help="JSON or YAML run config (see backend.runs.RunConfig)")
_PROJECT = typer.Option(..., "--project", help="project name or id")
_WAIT = typer.Option(False, "--wait", help="follow the run with a progress bar until it ends")
_INLINE = typer.Option(False, "--inline", help="execute in this process instead of a worker (implies --wait)")


@app.command()
def train(config: Path = _CONFIG, project: str = _PROJECT, wait: bool = _WAIT, inline: bool = _INLINE) -> None:
    """Launch a train run: base evaluation, LoRA / QLoRA training, evaluation of the adapter."""
    _launch("train", config, project, wait, inline)


@app.command()
def evaluate(config: Path = _CONFIG, project: str = _PROJECT, wait: bool = _WAIT, inline: bool = _INLINE) -> None:
    """Launch an evaluate run (a base model, or an adapter with adapter_run_id) on the held-out split."""
    _launch("evaluate", config, project, wait, inline)


@app.command()
def predict(config: Path = _CONFIG, project: str = _PROJECT, wait: bool = _WAIT, inline: bool = _INLINE) -> None:
    """Launch a predict run: draft boxes on image_ids / image_status, to accept in the studio."""
    _launch("predict", config, project, wait, inline)


if __name__ == "__main__":
    app()
