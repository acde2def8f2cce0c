"""The one configuration file (YAML), validated on load.

With no file at all the embedded defaults apply: the demo ERP in SQLite as the source, an
embedded SQLite reporting database, staging and outputs under ``./var``. A wrong key, type or
value stops with a message naming the key and what is expected (:class:`ConfigError`).

Secrets never live in the file. A database URL is given either as ``url_env`` (the name of an
environment variable holding the URL), ``conn_id`` (an Airflow connection, used inside Airflow),
or ``url`` without a password. SMTP credentials come from ``TIAOBO_SMTP_USER`` /
``TIAOBO_SMTP_PASSWORD`` (or the Airflow connection named in ``email.smtp_conn_id``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the key and what is expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str | None = Field(None, description="SQLAlchemy URL without a password")
    url_env: str | None = Field(None, description="environment variable holding the URL")
    conn_id: str | None = Field(None, description="Airflow connection id (inside Airflow)")

    @field_validator("url")
    @classmethod
    def _no_password(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parsed = make_url(v)
        except Exception as exc:  # sqlalchemy raises ArgumentError
            raise ValueError(f"not a database URL ({exc})") from exc
        if parsed.password:
            raise ValueError(
                "the URL contains a password; put the whole URL in an environment variable and"
                " name it with url_env (or use an Airflow connection with conn_id)"
            )
        return v

    def resolve(self, default: str, what: str) -> str:
        """The URL to connect to: environment variable, Airflow connection, url, then default."""
        if self.url_env:
            value = os.environ.get(self.url_env)
            if not value:
                raise ConfigError(f"{what}.url_env: environment variable {self.url_env} is not set")
            return value
        if self.conn_id:
            from pipelines.connections import airflow_connection_url

            return airflow_connection_url(self.conn_id)
        return self.url or default


class SourceConfig(DatabaseConfig):
    kind: Literal["sql"] = "sql"
    profile: str = Field("demo", description="source profile folder under sql/sources/")
    chunk_rows: int = Field(200_000, gt=0, description="rows per extraction chunk")
    retries: int = Field(3, ge=0, description="connection attempts after the first one fails")
    retry_backoff_seconds: float = Field(2.0, ge=0)


class PolicyRow(_Strict):
    category: str = "*"
    abc_class: Literal["A", "B", "C", "*"] = "*"
    service_level: float = Field(0.95, gt=0.5, lt=1.0)
    min_cover_days: float = Field(7.0, ge=0)
    max_cover_days: float = Field(60.0, gt=0)
    slow_mover_days: int = Field(60, gt=0)
    auto_approve_max_units: float = Field(50.0, ge=0)
    auto_approve_max_value: float = Field(2000.0, ge=0)

    @model_validator(mode="after")
    def _band(self) -> PolicyRow:
        if self.max_cover_days <= self.min_cover_days:
            raise ValueError("max_cover_days must be greater than min_cover_days")
        return self


def _default_policies() -> list[PolicyRow]:
    return [
        PolicyRow(),
        PolicyRow(abc_class="A", service_level=0.98, min_cover_days=10, max_cover_days=45),
        PolicyRow(abc_class="B", service_level=0.95),
        PolicyRow(abc_class="C", service_level=0.90, min_cover_days=5, max_cover_days=90, slow_mover_days=90),
    ]


class ForecastConfig(_Strict):
    horizon_days: int = Field(28, ge=1, le=366, description="days forecast ahead")
    window_days: int = Field(28, ge=1, description="moving-average window")
    history_days: int = Field(730, ge=28, description="days of sales history read")
    holdout_days: int = Field(28, ge=1, description="holdout for the accuracy table")


class PolicyConfig(_Strict):
    default_lead_time_days: float = Field(7.0, gt=0, description="used when no lead time is recorded")
    default_lead_time_std_days: float = Field(2.0, ge=0)
    default_review_period_days: float = Field(7.0, gt=0)
    abc_cutoffs: tuple[float, float] = Field((0.80, 0.95), description="cumulative value shares for A and B")


class TransferConfig(_Strict):
    coverage_days: int = Field(14, ge=1, description="horizon over which a receiver's shortage is counted")
    margin_floor: float = Field(0.0, ge=0, description="minimum benefit minus cost for a transfer")


class RecipientGroup(_Strict):
    name: str
    recipients: list[str] = Field(min_length=1)
    language: Literal["en", "zh-CN"] = "en"
    categories: list[str] = Field(default_factory=list, description="empty = all categories")
    regions: list[str] = Field(default_factory=list, description="empty = all regions")


class EmailConfig(_Strict):
    sender: str = "tiaobo@localhost"
    smtp_host: str | None = Field(None, description="no host: emails are written as .eml files")
    smtp_port: int = Field(25, gt=0, lt=65536)
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    smtp_retries: int = Field(3, ge=0)
    smtp_retry_backoff_seconds: float = Field(2.0, ge=0, description="first wait between attempts, doubled each time")
    smtp_conn_id: str | None = Field(None, description="Airflow connection with SMTP credentials")
    planners: list[RecipientGroup] = Field(
        default_factory=lambda: [
            RecipientGroup(name="planners", recipients=["planners@example.com"], language="zh-CN")
        ]
    )
    data_team: list[str] = Field(default_factory=lambda: ["data-team@example.com"])


class ValidationConfig(_Strict):
    max_bad_row_share: float = Field(0.05, ge=0, le=1, description="more bad rows than this stops the run")


class Config(_Strict):
    source: SourceConfig = Field(default_factory=SourceConfig)
    reporting: DatabaseConfig = Field(default_factory=DatabaseConfig)
    staging_dir: Path = Path("var/staging")
    output_dir: Path = Path("var/output")
    timezone: str = "Asia/Shanghai"
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    policies: list[PolicyRow] = Field(default_factory=_default_policies)
    transfers: TransferConfig = Field(default_factory=TransferConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)

    @field_validator("policies")
    @classmethod
    def _has_default_policy(cls, v: list[PolicyRow]) -> list[PolicyRow]:
        if not any(p.category == "*" and p.abc_class == "*" for p in v):
            raise ValueError("needs a default row with category '*' and abc_class '*'")
        keys = [(p.category, p.abc_class) for p in v]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError(f"duplicate (category, abc_class) rows: {sorted(dup)}")
        return v

    # -- resolved locations ------------------------------------------------------------------
    @property
    def demo_source_path(self) -> Path:
        return self.staging_dir.parent / "demo_erp.sqlite"

    def source_url(self) -> str:
        return self.source.resolve(f"sqlite:///{self.demo_source_path}", "source")

    def reporting_url(self) -> str:
        return self.reporting.resolve(f"sqlite:///{self.staging_dir.parent / 'reporting.sqlite'}", "reporting")


def _format_errors(exc: ValidationError, origin: str) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/configuration.md)"
        parts.append(f"  {key}: {msg}")
    return f"invalid configuration in {origin}:\n" + "\n".join(parts)


def load_config(path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate the YAML file at ``path`` (None: embedded defaults).

    ``overrides`` are merged on top (used by tests and the CLI). Relative paths stay relative to
    the working directory the pipeline runs in.
    """
    data: dict[str, Any] = {}
    origin = "the embedded defaults"
    if path is not None:
        p = Path(path)
        origin = str(p)
        if not p.exists():
            raise ConfigError(f"configuration file {p} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {p} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"configuration file {p}: the top level must be a mapping of keys")
        data = loaded
    if overrides:
        data = _merge(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def redact_url(url: str) -> str:
    """A URL safe for logs and error messages: the password is never shown."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
