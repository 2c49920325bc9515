"""`studio`: the command line. Every command uses the same settings as the server."""
from __future__ import annotations

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


if __name__ == "__main__":
    app()
