"""The sources file (CONTRACTS §2) and run settings."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
