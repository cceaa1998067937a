"""The sources file (CONTRACTS §2) and run settings."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

SourceKind = Literal["dossier_files", "dossier_api", "task_files", "document_files"]


class SourcesFileError(ValueError):
    """The sources file is missing or not in the form CONTRACTS §2 describes."""


class Source(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    kind: SourceKind
    path: Path | None = None
    url: str | None = None
    token_env: str | None = None


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    file: Path
    units: Path | None = None
    sources: list[Source]

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[Source]) -> list[Source]:
        names = [s.name for s in sources]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"source names must be unique, repeated: {', '.join(duplicated)}")
        return sources


def load_sources_file(path: Path) -> SourcesFile:
    path = Path(path)
    if not path.is_file():
        raise SourcesFileError(f"sources file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SourcesFileError(f"sources file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "sources" not in data:
        raise SourcesFileError(f"sources file {path} has no 'sources:' list")
    base = path.resolve().parent
    try:
        parsed = SourcesFile(file=path.resolve(), **data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SourcesFileError(f"sources file {path}: {where}: {first['msg']}") from exc
    # Paths are relative to the sources file.
    if parsed.units is not None:
        parsed.units = (base / parsed.units).resolve()
    for source in parsed.sources:
        if source.path is not None:
            source.path = (base / source.path).resolve()
        if source.kind in ("dossier_files", "task_files", "document_files") and source.path is None:
            raise SourcesFileError(f"sources file {path}: source {source.name!r} needs a 'path'")
    return parsed


def default_as_of() -> date:
    """Yesterday in Asia/Ho_Chi_Minh: the nightly run evaluates the day just closed."""
    return datetime.now(LOCAL_TZ).date() - timedelta(days=1)


class Settings(BaseSettings):
    """Every setting cchc reads from the environment (prefix CCHC_), in one place.

    Command-line options win over these; `infra/.env.example` lists them all (a test
    checks that it does). API tokens are named per source in the sources file.
    """

    # an empty variable (compose passes unset optional ones as "") means unset
    model_config = SettingsConfigDict(env_prefix="CCHC_", extra="ignore", env_ignore_empty=True)

    warehouse_url: str | None = Field(None, description="duckdb:///file or postgresql://...")
    sources: Path | None = Field(None, description="the sources file (YAML)")
    report_dir: Path | None = Field(None, description="where reports are written")
    webhook_url: str | None = Field(None, description="POSTed a JSON message when a run fails")
    lock_wait_seconds: float = Field(
        0, ge=0, description="how long a run waits for another run on the same warehouse"
    )
    log_format: Literal["text", "json"] = Field("text", description="json: one object a line")
    source_failure_policy: Literal["fail", "publish_others"] = Field(
        "fail", description="a source that fails: fail the run, or publish the others"
    )
    dask_address: str | None = Field(
        None, description="extract on this Dask scheduler ('local' starts one)"
    )
    pii_key: str | None = Field(None, description="key of the hash that stands for personal data")
    dbt_project_dir: Path | None = Field(
        None, description="a copy of dbt_project/ with a deployment's own models and tests"
    )
    duckdb_memory_limit: str = Field(
        "3GB",
        pattern=r"^[0-9]+(\.[0-9]+)?(MB|GB)$",
        description="memory a DuckDB warehouse may hold before it spills to disk (DuckDB's "
        "default, 80% of the machine, let a province's history take 7 GB)",
    )
    pg_work_mem: str = Field(
        "64MB",
        pattern=r"^[0-9]+(kB|MB|GB)$",
        description="PostgreSQL work_mem of the model builds (the server's default, 4MB, "
        "spilled a night's hash joins to disk: a 2,000,000-dossier night 124 s against 98 s)",
    )
    pg_maintenance_work_mem: str = Field(
        "256MB",
        pattern=r"^[0-9]+(kB|MB|GB)$",
        description="PostgreSQL maintenance_work_mem of the model builds: the sort that "
        "builds a whole build's dossier-key indexes (the server's default is 64MB)",
    )


def settings() -> Settings:
    return Settings()
