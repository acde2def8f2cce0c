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

from pipelines.urls import airflow_connection_url


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
            return airflow_connection_url(self.conn_id)
        return self.url or default


_CANONICAL_SOURCE_TABLES = ("items", "locations", "lanes", "sales", "stock", "lead_times")
#: canonical tables a source may provide (empty when it does not)
_OPTIONAL_SOURCE_TABLES = ("transfer_status", "sourcing", "purchase_orders")


class FileTable(_Strict):
    """One canonical table read from files dropped in ``source.folder``."""

    pattern: str = Field(description="glob of the file names in the folder, e.g. 'sales_*.csv' (.csv, .xlsx, .parquet)")
    columns: dict[str, str] = Field(default_factory=dict, description="canonical column -> column name in the file")
    defaults: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="canonical column -> constant, for columns the file does not have"
    )
    sheet: str | int = Field(0, description="xlsx: sheet name or 0-based index")
    encoding: str | None = Field(None, description="CSV encoding; none = detect (UTF-8, UTF-8 with BOM, GBK/GB18030)")
    delimiter: str = Field(",", min_length=1, max_length=1)


class GenericTable(_Strict):
    """One canonical table of the generic profile: a source table and its column names."""

    table: str = Field(description="source table name (optionally schema.table)")
    columns: dict[str, str] = Field(default_factory=dict, description="canonical column -> source column")
    defaults: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="canonical column -> constant, for columns the source does not have"
    )
    aggregate: bool = Field(
        True, description="sales: sum rows per SKU, location and day (false: the table already has one row per day)"
    )


class ReportingConfig(DatabaseConfig):
    lock_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="how long a migration or publish waits for a lock another session holds (a planner's"
        " open transaction on a view, the pipeline's advisory lock) before it gives up naming that session",
    )
    statement_timeout_s: float = Field(
        1800.0, gt=0, le=86400, description="the longest one statement of ours may run on the reporting database"
    )


class SourceConfig(DatabaseConfig):
    kind: Literal["sql", "files"] = Field("sql", description="sql: a database and a profile; files: file drops")
    profile: str = Field("demo", description="source profile folder under sql/sources/")
    chunk_rows: int = Field(200_000, gt=0, le=10_000_000, description="rows per extraction chunk")
    retries: int = Field(3, ge=0, le=20, description="connection attempts after the first one fails")
    retry_backoff_seconds: float = Field(2.0, ge=0, le=600)
    lookback_days: int = Field(7, ge=0, le=366, description="sales: days before the watermark re-read every night")
    full_refresh: bool = Field(False, description="sales: ignore the watermark, re-read the whole history window")
    max_skipped_days: int = Field(
        2,
        ge=0,
        le=30,
        description="Airflow: a business date whose previous day the source has no sales for yet is skipped"
        " (no failure email) at most this many dates in a row; then the run goes on and validation"
        " reports the stale source (0 = never skip)",
    )
    folder: str | None = Field(None, description="file drops: local folder or fsspec URL (s3://..., file://...)")
    encoding: str | None = Field(None, description="file drops: encoding of every CSV (none = detect per file)")
    files: dict[str, FileTable] = Field(
        default_factory=dict,
        description="canonical table -> file drop; with kind sql, tables the profile does not hold (e.g. lanes)",
    )
    tables: dict[str, GenericTable] = Field(default_factory=dict, description="generic profile: table and column names")
    language: str = Field("zh_CN", description="Odoo profile: language of translated names (en_US fallback)")

    @field_validator("files", "tables")
    @classmethod
    def _known_tables(cls, v: dict[str, Any]) -> dict[str, Any]:
        known = (*_CANONICAL_SOURCE_TABLES, *_OPTIONAL_SOURCE_TABLES)
        unknown = sorted(set(v) - set(known))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; expected some of {list(known)}")
        return v

    @model_validator(mode="after")
    def _kind_needs(self) -> SourceConfig:
        if self.kind == "files":
            if not self.folder:
                raise ValueError("kind 'files' needs folder (a local folder or an fsspec URL)")
            missing = [t for t in _CANONICAL_SOURCE_TABLES if t not in self.files]
            if missing:
                raise ValueError(f"kind 'files' needs a files entry for {missing}")
        elif self.files and not self.folder:
            raise ValueError("files entries need folder (where the files are dropped)")
        if self.profile == "generic" and self.kind == "sql":
            missing = [t for t in _CANONICAL_SOURCE_TABLES if t not in self.tables and t not in self.files]
            if missing:
                raise ValueError(f"profile 'generic' needs a tables (or files) entry for {missing}")
        return self


class PolicyRow(_Strict):
    category: str = "*"
    abc_class: Literal["A", "B", "C", "*"] = "*"
    service_level: float = Field(0.95, gt=0.5, lt=1.0, description="target cycle service level")
    min_cover_days: float = Field(7.0, ge=0, description="health band: below = under-stocked")
    max_cover_days: float = Field(60.0, gt=0, description="health band: above = over-stocked")
    slow_mover_days: int = Field(60, gt=0, le=3650, description="no sale in this many days = slow mover")
    auto_approve_max_units: float = Field(50.0, ge=0)
    auto_approve_max_value: float = Field(2000.0, ge=0)
    fill_rate: float | None = Field(
        None, gt=0.5, lt=1.0, description="optional fill-rate (beta) target; the larger safety stock wins"
    )
    safety_stock_min_days: float = Field(0.0, ge=0, description="safety stock at least this many days of demand")
    safety_stock_max_days: float | None = Field(
        None, gt=0, description="safety stock at most this many days of demand (none = no cap)"
    )
    dead_stock_days: int | None = Field(
        None, gt=0, description="no sale in this many days = dead stock (none = 3 x slow_mover_days)"
    )
    alert_high_value: float = Field(
        5000.0, ge=0, le=1e12, description="slow-mover and excess alerts: high from this value at cost"
    )
    alert_medium_value: float = Field(1000.0, ge=0, le=1e12, description="... and medium from this value")
    alert_urgent_value: float = Field(
        500.0, ge=0, le=1e12, description="stock-out and expiry alerts: high (when close) only from this value at risk"
    )
    alert_material_value: float = Field(50.0, ge=0, le=1e12, description="... and medium only from this value")
    alert_materiality: float = Field(
        10.0, ge=0, le=1e12, description="alerts with less value at risk are counted, not listed"
    )

    @model_validator(mode="after")
    def _band(self) -> PolicyRow:
        if self.max_cover_days <= self.min_cover_days:
            raise ValueError("max_cover_days must be greater than min_cover_days")
        if self.safety_stock_max_days is not None and self.safety_stock_max_days < self.safety_stock_min_days:
            raise ValueError("safety_stock_max_days must be at least safety_stock_min_days")
        if self.dead_stock_days is not None and self.dead_stock_days < self.slow_mover_days:
            raise ValueError("dead_stock_days must be at least slow_mover_days")
        if self.alert_medium_value > self.alert_high_value or self.alert_material_value > self.alert_urgent_value:
            raise ValueError(
                "alert thresholds: medium must not exceed high (alert_medium_value <= alert_high_value,"
                " alert_material_value <= alert_urgent_value)"
            )
        return self


def _default_policies() -> list[PolicyRow]:
    return [
        PolicyRow(),
        PolicyRow(abc_class="A", service_level=0.98, min_cover_days=10, max_cover_days=45),
        PolicyRow(abc_class="B", service_level=0.95),
        PolicyRow(abc_class="C", service_level=0.90, min_cover_days=5, max_cover_days=90, slow_mover_days=90),
    ]


class ForecastConfig(_Strict):
    @field_validator("min_gain")
    @classmethod
    def _gain_range(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0 <= v < 1:
            raise ValueError("min_gain must be at least 0 and below 1, or 'auto'")
        return v

    horizon_days: int = Field(28, ge=1, le=366, description="days forecast ahead")
    window_days: int = Field(28, ge=1, le=366, description="moving-average window")
    history_days: int = Field(730, ge=28, le=3660, description="days of sales history read")
    holdout_days: int = Field(28, ge=1, le=366, description="holdout for the accuracy table (moving_average method)")
    method: Literal["selected", "moving_average"] = Field(
        "selected",
        description="selected = per-series choice by backtest (with the global GBM); moving_average = skeleton",
    )
    model_dir: Path | None = Field(None, description="versioned model artifacts; default <staging_dir>/../models")
    model_per_shard: bool = Field(
        False,
        description="one global model per forecast shard (trained on the shard's series, as per-store models), "
        "instead of one over the whole panel applied to every shard",
    )
    backtest_folds: int = Field(2, ge=1, le=8, description="rolling-origin folds of horizon_days each")
    use_gbm: bool = Field(True, description="include the global gradient-boosting candidate")
    gbm_max_iter: int = Field(150, ge=10, le=2000, description="boosting iterations of the global model")
    gbm_row_weights: Literal["none", "level", "metric"] = Field(
        "metric",
        description="training weight of a series' rows: metric = as the volume-weighted RMSSE weighs it "
        "(its recent level x volume / naive scale), level = its recent level, none = equal",
    )
    backtest_refit_gbm: bool = Field(
        True,
        description="refit the global model before every backtest fold (honest scores for the selection and "
        "the combination weight; one more fit per retrain)",
    )
    min_gain: float | Literal["auto"] = Field(
        "auto",
        description="a series leaves the globally best model only if this much better (0 to 1); "
        "auto = chosen on the backtest (select on the earlier folds, score on the last)",
    )
    lead_time_days: int = Field(
        7, ge=1, le=366, description="lead time of the lead-time demand quantiles in the metadata"
    )


class PolicyConfig(_Strict):
    default_lead_time_days: float = Field(7.0, gt=0, description="used (and flagged) when no lead time is recorded")
    default_lead_time_std_days: float = Field(2.0, ge=0)
    default_review_period_days: float = Field(7.0, gt=0)
    abc_cutoffs: tuple[float, float] = Field((0.80, 0.95), description="cumulative value shares for A and A+B")
    abc_scope: Literal["network", "location"] = Field(
        "network", description="which ABC class picks the policy row: network-wide or per location"
    )
    abc_days: int = Field(365, ge=7, le=3660, description="days of sales valued for ABC")
    xyz_cutoffs: tuple[float, float] = Field(
        (0.5, 1.0), description="CV of weekly demand: X up to the first, Y up to the second"
    )
    xyz_weeks: int = Field(26, ge=4, le=520, description="weeks of sales for XYZ and the demand pattern")
    std_days: int = Field(56, ge=2, le=3660, description="days of sales for the daily demand standard deviation")
    adi_cutoff: float = Field(1.32, gt=1.0, description="average inter-demand interval (weeks) above = intermittent")
    cv2_cutoff: float = Field(0.49, gt=0.0, description="squared CV of non-zero weekly demand above = erratic/lumpy")
    special_categories: list[str] = Field(
        default_factory=list,
        description="categories always planned from the discrete (Poisson / negative binomial) lead-time demand",
    )
    method: Literal["service_level", "optimised"] = Field(
        "service_level",
        description="service_level: safety stock for each policy row's service level / fill rate (default);"
        " optimised: reorder point and order quantity chosen so that each ABC class reaches its target at"
        " the least stock value (pipelines/replenishment.py)",
    )
    optimiser_measure: Literal["fill_rate", "cycle_service"] = Field(
        "fill_rate", description="optimised: the group target is a fill rate (units served) or a cycle service level"
    )
    optimiser_target: float | dict[str, float] | None = Field(
        None,
        description="optimised: the service each ABC class must reach, one value or per class {A: .., B: .., C: ..};"
        " none = the policy rows' fill rate (else service level; cycle_service: their service level), the"
        " highest in the class",
    )
    optimiser_reorder_points: int = Field(
        40, ge=5, le=400, description="optimised: reorder points tried per item (grid from 0 to mean + 6 sd)"
    )
    optimiser_order_quantities: int = Field(
        12, ge=1, le=200, description="optimised: order quantities tried per item (from the MOQ by the multiple)"
    )

    @field_validator("optimiser_target")
    @classmethod
    def _target(cls, v: float | dict[str, float] | None) -> float | dict[str, float] | None:
        if v is None:
            return v
        values = v if isinstance(v, dict) else {"*": v}
        if isinstance(v, dict):
            wrong = sorted(set(v) - {"A", "B", "C"})
            if wrong:
                raise ValueError(f"per-class targets are keyed by ABC class A, B, C, got {wrong}")
            missing = sorted({"A", "B", "C"} - set(v))
            if missing:
                raise ValueError(f"per-class targets need every ABC class; missing {missing}")
        bad = {k: t for k, t in values.items() if not 0 < float(t) < 1}
        if bad:
            raise ValueError(f"targets are service levels strictly between 0 and 1, got {bad}")
        return v

    @field_validator("abc_cutoffs", "xyz_cutoffs")
    @classmethod
    def _increasing(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < v[1]:
            raise ValueError("needs two increasing positive cut-offs")
        return v

    @field_validator("abc_cutoffs")
    @classmethod
    def _shares(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[1] > 1:
            raise ValueError("ABC cut-offs are cumulative value shares, at most 1")
        return v


class TransferConfig(_Strict):
    coverage_days: int = Field(14, ge=1, le=366, description="horizon over which a receiver's shortage is counted")
    margin_floor: float = Field(
        0.0, ge=0, description="minimum benefit minus cost for a transfer (milp: per lane shipment)"
    )
    method: Literal["milp", "greedy"] = Field("milp", description="optimisation model, or the greedy baseline")
    donor_keep: Literal["risk", "reorder_point"] = Field(
        "risk",
        description="milp: a donor gives units down to its median need, each unit below its p99.5 charged"
        " the sales it is expected to lose there (risk), or never below its reorder point (reorder_point)",
    )
    time_limit_seconds: float = Field(240.0, gt=0, le=86_400, description="solver time limit; then the greedy is used")
    mip_rel_gap: float = Field(0.01, ge=0, lt=1, description="relative optimality gap at which the solver stops")
    batch_candidates: int = Field(
        40_000, ge=100, le=10_000_000, description="largest number of candidate transfers per MILP"
    )
    holding_cost_rate: float = Field(0.25, ge=0, description="yearly holding cost as a share of unit cost")
    planner_categories: list[str] = Field(default_factory=list, description="categories never auto-approved")
    decisions_csv: Path | None = Field(None, description="planners' approve/reject CSV read by the next run")
    reject_cooldown_days: int = Field(
        14, ge=0, le=3650, description="a rejected transfer is not proposed again for this long"
    )


_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
#: fields of an exported order line (the file template and the generic SQL tables map them)
ORDER_FIELDS = (
    "order_no",
    "revision",
    "action",
    "status",
    "order_date",
    "departure_date",
    "from_location",
    "to_location",
    "line_no",
    "sku",
    "quantity",
)
ORDER_HEADER_FIELDS = ("order_no", "revision", "status", "order_date", "departure_date", "from_location", "to_location")
ORDER_LINE_FIELDS = ("order_no", "line_no", "sku", "quantity")


class OrderTable(_Strict):
    """One ERP table an order is written into (generic SQL write-back): its name and columns."""

    table: str = Field(description="table name, optionally schema.table (identifiers only)")
    columns: dict[str, str] = Field(default_factory=dict, description="order field -> column (default: same name)")

    @field_validator("table")
    @classmethod
    def _table_identifier(cls, v: str) -> str:
        import re

        if not all(re.match(_IDENTIFIER, part) for part in v.split(".")) or v.count(".") > 1:
            raise ValueError(f"{v!r} is not a table name (letters, digits, underscore; optionally schema.table)")
        return v

    @field_validator("columns")
    @classmethod
    def _column_identifiers(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        unknown = sorted(set(v) - set(ORDER_FIELDS))
        if unknown:
            raise ValueError(f"unknown order field(s) {unknown}; expected some of {list(ORDER_FIELDS)}")
        bad = sorted(c for c in v.values() if not re.match(_IDENTIFIER, c))
        if bad:
            raise ValueError(f"not column names: {bad} (letters, digits, underscore)")
        return v


class OrderTarget(DatabaseConfig):
    """Where approved transfer orders are exported: ``sql`` (write-back into the ERP's transfer-request
    tables; the database is the source's unless ``url_env`` / ``conn_id`` / ``url`` say otherwise) or
    ``file`` (one CSV or xlsx per order revision in ``folder``)."""

    name: str = Field(min_length=1, description="name of the target in the order book (unique)")
    kind: Literal["sql", "file"]
    profile: Literal["demo", "generic"] = Field("demo", description="sql: the demo ERP's tables, or generic")
    header: OrderTable | None = Field(None, description="sql generic: the request header table")
    lines: OrderTable | None = Field(None, description="sql generic: the request line table")
    folder: Path | None = Field(None, description="file: folder the files are written into")
    format: Literal["csv", "xlsx"] = "csv"
    encoding: str = Field("utf-8", description="file csv: encoding (gbk for ERPs that import it)")
    file_columns: dict[str, str] = Field(
        default_factory=dict, description="file: order field -> header text, in this order (default: every field)"
    )

    @model_validator(mode="after")
    def _needs(self) -> OrderTarget:
        if self.kind == "file":
            if self.folder is None:
                raise ValueError("a file target needs folder")
            unknown = sorted(set(self.file_columns) - set(ORDER_FIELDS))
            if unknown:
                raise ValueError(
                    f"file_columns: unknown order field(s) {unknown}; expected some of {list(ORDER_FIELDS)}"
                )
            "".encode(self.encoding)  # an unknown codec is a LookupError here, at load
        if self.kind == "sql" and self.profile == "generic" and (self.header is None or self.lines is None):
            raise ValueError("a generic sql target needs header and lines tables")
        return self


class OrdersConfig(_Strict):
    targets: list[OrderTarget] = Field(
        default_factory=list,
        description="where approved transfers are exported as orders (none: kept in the order book)",
    )
    expire_after_days: int = Field(
        5, ge=0, le=365, description="an order not shipped this many days after its departure date expires"
    )

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, v: list[OrderTarget]) -> list[OrderTarget]:
        names = [t.name for t in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate target name(s) {dup}")
        return v


class WorkbenchConfig(_Strict):
    """The planner web workbench (``tiaobo serve``, :mod:`pipelines.workbench`).

    The session secret is never in the file: ``session_secret_env`` names the environment
    variable holding it (at least 32 characters). Authority and throttling are enforced on the
    server (:mod:`pipelines.workbench.service`, :mod:`pipelines.workbench.auth`).
    """

    base_url: str | None = Field(
        None, description="public URL of the workbench, e.g. https://tiaobo.example.com (digest links); none: no links"
    )
    session_secret_env: str = Field(
        "TIAOBO_SESSION_SECRET", description="environment variable holding the session-signing secret"
    )
    session_max_age_seconds: int = Field(12 * 3600, gt=0, description="a session expires this long after login")
    secure_cookies: bool = Field(False, description="mark the session cookie Secure (set true behind HTTPS)")
    planner_approval_limit: float = Field(
        5000.0,
        ge=0,
        description="largest transfer value (quantity x unit cost) a planner may approve; above it a manager must",
    )
    proxy_user_header: str | None = Field(
        None, description="trusted reverse-proxy header naming the signed-in user (e.g. X-Remote-User); none: off"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="client IPs whose proxy_user_header is believed (exact addresses)"
    )
    login_max_failures: int = Field(5, ge=1, description="failed logins per user and IP within the window")
    login_window_minutes: int = Field(15, ge=1, description="throttling window for failed logins")
    page_size: int = Field(50, ge=5, le=500, description="rows per page of Transfers and Alerts")

    @model_validator(mode="after")
    def _proxy_needs_trust(self) -> WorkbenchConfig:
        if self.proxy_user_header and not self.trusted_proxies:
            raise ValueError("proxy_user_header needs trusted_proxies (the reverse proxy's addresses)")
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class RecipientGroup(_Strict):
    name: str
    recipients: list[str] = Field(min_length=1)
    language: Literal["en", "zh-CN"] = "en"
    categories: list[str] = Field(default_factory=list, description="empty = all categories")
    regions: list[str] = Field(default_factory=list, description="empty = all regions")


class EmailConfig(_Strict):
    """Planner digests and the data-team failure email (see pipelines.notify.smtp_settings).

    The SMTP server comes from the Airflow connection ``smtp_conn_id`` when set, else from
    ``smtp_host`` / ``smtp_port`` / TLS flags, each overridable by ``TIAOBO_SMTP_HOST``,
    ``TIAOBO_SMTP_PORT``, ``TIAOBO_SMTP_STARTTLS``, ``TIAOBO_SMTP_SSL``; credentials from
    ``TIAOBO_SMTP_USER`` / ``TIAOBO_SMTP_PASSWORD``. No server at all: messages are ``.eml`` files.
    """

    sender: str = "tiaobo@localhost"
    smtp_host: str | None = Field(
        None, description="no host (and no TIAOBO_SMTP_HOST): emails are written as .eml files"
    )
    smtp_port: int = Field(25, gt=0, lt=65536)
    smtp_starttls: bool = Field(False, description="STARTTLS after connecting (port 587)")
    smtp_ssl: bool = Field(False, description="TLS from the start (port 465)")
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    smtp_total_seconds: float = Field(
        120.0, gt=0, le=3600, description="the longest one message may take with the SMTP server, every reply together"
    )
    smtp_retries: int = Field(3, ge=0, le=20)
    smtp_retry_backoff_seconds: float = Field(
        2.0, ge=0, le=600, description="first wait between attempts, doubled each time"
    )
    smtp_conn_id: str | None = Field(
        None, description="Airflow connection (host, port, login, password; extras starttls/ssl); wins over smtp_host"
    )
    planners: list[RecipientGroup] = Field(
        default_factory=lambda: [RecipientGroup(name="planners", recipients=["planners@example.com"], language="zh-CN")]
    )
    data_team: list[str] = Field(default_factory=lambda: ["data-team@example.com"])
    failure_eml_retention_days: int = Field(
        30,
        ge=0,
        le=3660,
        description="failure emails kept as .eml are removed from run-date folders older than this many days"
        " (pipelines.housekeeping.prune_failure_emails)",
    )


class ValidationConfig(_Strict):
    max_bad_row_share: float = Field(0.05, ge=0, le=1, description="more bad rows than this stops the run")
    volume_band: float = Field(
        0.5, gt=0, description="a table's row count may differ from its trailing median by this share (0.5 = +-50%)"
    )
    volume_history_runs: int = Field(14, ge=1, le=366, description="published runs the trailing median is taken over")
    max_lead_time_days: float = Field(
        365.0, gt=0, description="lead times (and their std, review period) above this are bad rows"
    )
    max_transit_days: int = Field(90, ge=0, description="lane transit days above this are bad rows")
    max_shelf_life_days: int = Field(3650, ge=1, description="shelf lives above this are bad rows")
    max_missing_sales_days: int = Field(
        0, ge=0, description="company-wide days without any sale tolerated inside the sales window (e.g. a closure)"
    )
    data_docs: bool = Field(True, description="build Great Expectations Data Docs (HTML) for every run")
    max_quantity: float = Field(
        1e7, gt=0, le=1e12, description="a sales or stock quantity above this (units, one row) is a bad row"
    )
    max_unit_price: float = Field(
        1e7, gt=0, le=1e12, description="an item's unit cost or price above this (company currency) is a bad row"
    )
    spike_factor: float = Field(
        1000.0, gt=1, le=1e9, description="a sale above this times its series' median quantity is a bad row"
    )
    spike_floor: float = Field(
        1.0, gt=0, le=1e6, description="the smallest median the spike rule multiplies (units), for sparse series"
    )
    content_check_days: int = Field(
        7, ge=1, le=90, description="the last days of the sales window the content rules check"
    )
    content_baseline_days: int = Field(
        28, ge=7, le=366, description="the days before the checked ones their trailing baseline is taken over"
    )
    day_low: float = Field(
        0.2, ge=0, lt=1, description="a checked day selling less than this times the baseline median stops the run"
    )
    day_high: float = Field(
        10.0, gt=1, le=1e6, description="a checked day selling more than this times the baseline median stops the run"
    )
    regular_share: float = Field(
        0.8, gt=0, le=1, description="a SKU selling on this share of the baseline days is a regular seller"
    )
    max_vanished_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="more regular sellers than this share with no sale in the checked days stops the run",
    )
    sku_band: float = Field(
        0.2, gt=0, le=10, description="SKUs sold in the window may differ from their published median by this share"
    )


class ShardsConfig(_Strict):
    """How the heavy stages split into Airflow tasks (:mod:`pipelines.shards`): results never depend on it."""

    by: Literal["location", "region", "category", "sku"] = Field(
        "location",
        description="what forecast and policy shards group: stores (location or region) or items (category or sku)",
    )
    count: int = Field(
        1,
        ge=1,
        le=64,
        description="at most this many shards per stage (a handful to a few dozen; 1 = one task per stage)",
    )


class Config(_Strict):
    source: SourceConfig = Field(default_factory=SourceConfig)
    reporting: ReportingConfig = Field(default_factory=ReportingConfig)
    staging_dir: Path = Path("var/staging")
    output_dir: Path = Path("var/output")
    timezone: str = "Asia/Shanghai"
    currency: str = Field(
        "CNY", pattern=r"^[A-Z]{3}$", description="the company currency (ISO 4217 code) money is shown in"
    )
    run_lock_timeout_s: float = Field(
        600.0, ge=0, le=86400, description="how long a run waits for another run of the same date to finish"
    )
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    shards: ShardsConfig = Field(default_factory=ShardsConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    policies: list[PolicyRow] = Field(default_factory=_default_policies)
    transfers: TransferConfig = Field(default_factory=TransferConfig)
    orders: OrdersConfig = Field(default_factory=OrdersConfig)
    workbench: WorkbenchConfig = Field(default_factory=WorkbenchConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Asia/Shanghai, Europe/Berlin, UTC)") from None
        return v

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
            loaded = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one
    silently: a setting written twice would be half ignored)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
