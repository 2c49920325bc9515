"""`studio`: the command line. Every command uses the same settings as the server."""
from __future__ import annotations

from pathlib import Path

import typer

from backend.config import get_settings

app = typer.Typer(help="VLM Studio: adapt vision-language models to your own images.", no_args_is_help=True)


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


@app.command()
def migrate() -> None:
    """Upgrade the database to the newest schema."""
    _prepare()
    typer.echo("database is at the newest migration")


@app.command()
def serve(host: str = typer.Option(None), port: int = typer.Option(None)) -> None:
    """Start the API (and the built front end) on the configured database."""
    import uvicorn

    from backend.main import create_app

    settings = get_settings()
    token = _prepare()
    host = host or settings.host
    port = port or settings.port
    typer.echo(f"VLM Studio at http://{host}:{port}/  (data: {settings.data_dir.resolve()})")
    typer.echo(f"admin API token: {token}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def up(host: str = typer.Option(None), port: int = typer.Option(None)) -> None:
    """Start the studio on the embedded default (SQLite in the data directory, no servers)."""
    serve(host=host, port=port)


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
    fmt: str = typer.Option(..., "--format", help="coco | yolo | voc | supertuxkart | detjson"),
    create: bool = typer.Option(False, "--create", help="create the project if it does not exist"),
) -> None:
    """Import images and boxes into a project, all or nothing, and print the report."""
    import json

    from tqdm import tqdm

    from backend.db import make_engine, make_sessionmaker
    from backend.errors import StudioError
    from backend.formats import get_format
    from backend.importer import image_count_hint, import_source, source_from_path
    from backend.storage import ImageStore

    settings = get_settings()
    _prepare()
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine)() as session:
            try:
                get_format(fmt)
                pid = _project_id(session, project, create)
                source = source_from_path(path, settings)
                # Each image is counted twice: once when checked, once when stored.
                with tqdm(total=2 * image_count_hint(source), unit="img", desc=f"import {fmt}") as bar:
                    report = import_source(session, ImageStore(settings.data_dir, settings.thumbnail_size),
                                           settings, pid, fmt, source, progress=bar.update)
            except StudioError as e:
                typer.echo(f"error ({e.status_code}): {e.message}", err=True)
                raise typer.Exit(1) from None
        typer.echo(json.dumps(report.as_dict(), indent=2))
    finally:
        engine.dispose()


@app.command()
def export(
    out: Path = typer.Argument(..., help="the zip to write"),
    project: str = typer.Option(..., "--project", help="project name or id"),
    fmt: str = typer.Option("coco", "--format", help="coco | yolo | voc"),
    split: str = typer.Option(None, "--split", help="only this split"),
) -> None:
    """Export a project's images and boxes as a zip."""
    from backend.db import make_engine, make_sessionmaker
    from backend.errors import StudioError
    from backend.exporter import export_zip
    from backend.formats import get_format
    from backend.storage import ImageStore

    settings = get_settings()
    _prepare()
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine)() as session:
            try:
                get_format(fmt, writable=True)
                pid = _project_id(session, project, False)
                tmp = out.with_name(out.name + ".part")  # a failed export leaves no half zip behind
                try:
                    with open(tmp, "wb") as f:
                        n = export_zip(session, ImageStore(settings.data_dir, settings.thumbnail_size), pid, fmt,
                                       f, split)
                    tmp.replace(out)
                finally:
                    tmp.unlink(missing_ok=True)
            except StudioError as e:
                typer.echo(f"error ({e.status_code}): {e.message}", err=True)
                raise typer.Exit(1) from None
        typer.echo(f"exported {n} images as {fmt} to {out}")
    finally:
        engine.dispose()


if __name__ == "__main__":
    app()
