"""Settings: every one has an embedded default, so `studio up` needs no set-up.

Production overrides them with environment variables (see docker-compose.yml):
`DATABASE_URL`, `CELERY_BROKER_URL`, `CELERY_RESULT_BACKEND` and `STUDIO_*`.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDIO_", extra="ignore")

    data_dir: Path = Path("data")
    # Where images, thumbnails and run outputs live: unset = data_dir; a folder; or
    # s3://bucket/prefix on any S3-compatible store (endpoint and keys from the standard AWS_*
    # variables). With S3, data_dir only caches what this process read, so a worker on another
    # machine needs the database URL, the broker URL and this.
    storage_url: str | None = None
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "STUDIO_DATABASE_URL")
    )
    celery_broker_url: str | None = Field(
        default=None, validation_alias=AliasChoices("CELERY_BROKER_URL", "STUDIO_CELERY_BROKER_URL")
    )
    celery_result_backend: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CELERY_RESULT_BACKEND", "STUDIO_CELERY_RESULT_BACKEND"),
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # API processes. One Python process runs one request's Python at a time (the GIL), so on a
    # database server (PostgreSQL) more cores need more processes; each has its own connection
    # pool (up to 30). The embedded SQLite default keeps 1: its writers queue on one file lock.
    workers: int = Field(default=1, ge=1)

    # Upload limits: untrusted files are checked against these before anything is stored.
    max_upload_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_archive_members: int = 100_000
    max_archive_bytes: int = 4 * 1024 * 1024 * 1024
    thumbnail_size: int = 256

    # Worker side
    device: str = "auto"  # auto | cpu | cuda
    # Runs (issue #5): queue names get this prefix (isolates test users sharing one Redis);
    # a worker renews its run's lease every lease/3 s; a run whose lease expired is re-queued
    # (resumed from its last checkpoint) until max_attempts, then failed; a queued run with no
    # claim after queued_resend_seconds has its message re-sent (the embedded broker loses
    # unacknowledged messages when a worker is killed).
    queue_prefix: str = ""
    run_lease_seconds: float = 60.0
    run_max_attempts: int = 3
    reaper_interval_seconds: float = 15.0
    queued_resend_seconds: float = 120.0
    # Re-training the demo base from scratch (the shipped weights need neither): overrides of
    # worker.demo_recipe.Recipe's tuned defaults, e.g. STUDIO_DEMO_RECIPE='{"steps": 6}' for a quick
    # build, and the folder of SuperTuxKart track folders it reads (default ../shared/supertuxkart).
    demo_recipe: dict = {}
    demo_frames: Path | None = None

    @field_validator("demo_recipe")
    @classmethod
    def _known_recipe(cls, v: dict) -> dict:
        # Checked at start-up (the API too), not when a worker is an hour into the build.
        from worker.demo_recipe import Recipe

        Recipe.from_overrides(v)
        return v

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'studio.db').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.celery_broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    def resolved_result_backend(self) -> str:
        return self.celery_result_backend or f"db+sqlite:///{(self.data_dir / 'results.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
