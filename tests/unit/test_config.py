"""Configuration: embedded defaults, strict keys, clear messages, no secrets in the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import ConfigError, load_config
from pipelines.urls import redact_url


def test_embedded_defaults_need_no_file():
    cfg = load_config()
    assert cfg.source.profile == "demo"
    assert cfg.source_url().startswith("sqlite:///")
    assert cfg.reporting_url().startswith("sqlite:///")
    assert any(p.category == "*" and p.abc_class == "*" for p in cfg.policies)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "tiaobo.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "forecast:\n  horizn_days: 14\n"))
    assert "forecast.horizn_days" in str(err.value)
    assert "unknown key" in str(err.value)


def test_wrong_type_and_value_are_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "forecast:\n  horizon_days: lots\nvalidation:\n  max_bad_row_share: 3\n"))
    msg = str(err.value)
    assert "forecast.horizon_days" in msg and "integer" in msg
    assert "validation.max_bad_row_share" in msg and "less than or equal to 1" in msg


def test_password_in_file_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "reporting:\n  url: postgresql+psycopg://loader:s3cret@db/reporting\n"))
    assert "password" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_url_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TIAOBO_REPORTING_URL", "postgresql+psycopg://loader:s3cret@db:5432/reporting")
    cfg = load_config(write(tmp_path, "reporting:\n  url_env: TIAOBO_REPORTING_URL\n"))
    assert cfg.reporting_url().endswith("@db:5432/reporting")
    assert "s3cret" not in redact_url(cfg.reporting_url())


def test_missing_environment_variable_is_named(tmp_path):
    cfg = load_config(write(tmp_path, "source:\n  url_env: TIAOBO_NOT_SET_ANYWHERE\n"))
    with pytest.raises(ConfigError, match="TIAOBO_NOT_SET_ANYWHERE"):
        cfg.source_url()


def test_policy_band_and_default_row(tmp_path):
    with pytest.raises(ConfigError, match="max_cover_days must be greater"):
        load_config(
            write(tmp_path, "policies:\n  - {category: '*', abc_class: '*', min_cover_days: 30, max_cover_days: 10}\n")
        )
    with pytest.raises(ConfigError, match="default row"):
        load_config(write(tmp_path, "policies:\n  - {category: dairy, abc_class: A}\n"))


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1,\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_example_config_is_valid(monkeypatch):
    cfg = load_config(Path(__file__).resolve().parents[2] / "tiaobo.example.yaml")
    assert cfg.source.url_env == "TIAOBO_SOURCE_URL"
    assert {g.language for g in cfg.email.planners} == {"zh-CN", "en"}


def test_a_time_zone_typo_is_refused_on_load():
    with pytest.raises(ConfigError, match=r"timezone: Value error, 'Asia/Shangai' is not an IANA time zone"):
        load_config(overrides={"timezone": "Asia/Shangai"})
    assert load_config(overrides={"timezone": "Europe/Berlin"}).timezone == "Europe/Berlin"


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    p = tmp_path / "tiaobo.yaml"
    p.write_text("forecast:\n  horizon_days: 28\n  window_days: 14\n  horizon_days: 56\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"the key 'horizon_days' is given twice \(lines 2 and 4\); keep one"):
        load_config(p)
    two = "orders:\n  targets:\n    - {name: a, kind: file, folder: x}\n    - {name: b, kind: file, folder: y}\n"
    p.write_text(two, encoding="utf-8")
    assert [t.name for t in load_config(p).orders.targets] == ["a", "b"]  # the same keys in two mappings


def test_a_password_holding_an_unencoded_at_sign_is_hidden_whole():
    from pipelines.urls import scrub_secret, scrub_urls

    url = "postgresql+psycopg://reader:p@ss:word@db.example.com:5432/erp"
    assert redact_url(url) == "postgresql+psycopg://reader:***@db.example.com:5432/erp"
    assert scrub_urls(f"could not connect to {url} now") == f"could not connect to {redact_url(url)} now"
    # a driver that split at the first "@" reports the tail as the host: hidden too
    msg = scrub_secret(f"{url}: could not translate host name 'ss:word@db.example.com' (password p@ss:word)", url)
    assert "ss:word" not in msg and "p@ss" not in msg and "db.example.com" in msg
    plain = "postgresql+psycopg://reader:hunter2@db/erp?sslmode=require"
    assert scrub_secret(f"x {plain} hunter2", plain) == "x postgresql+psycopg://reader:***@db/erp?sslmode=require ***"


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("forecast", "history_days", 10**12), ("source", "chunk_rows", 10**10), ("transfers", "time_limit_seconds", 1e9)],
)
def test_huge_numbers_are_refused_on_load_with_the_key(section, key, value):
    """Not "Python int too large" or a 141 GiB allocation at run time: the key and its bound, now."""
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: Input should be less than or equal to"):
        load_config(overrides={section: {key: value}})


def test_alert_thresholds_per_policy_row(tmp_path):
    from pipelines.frames import POLICY_PARAMS, lookup_policy, policies_with_extras

    cfg = load_config(
        write(
            tmp_path,
            "policies:\n  - {category: '*', abc_class: '*'}\n"
            "  - {category: '*', abc_class: A, alert_urgent_value: 2000, alert_materiality: 0}\n",
        )
    )
    staged = pd.DataFrame([p.model_dump(include={"category", "abc_class", *POLICY_PARAMS}) for p in cfg.policies])
    keys = pd.DataFrame({"category": ["c", "c"], "abc_class": ["A", "B"]})
    got = lookup_policy(keys, policies_with_extras(staged, cfg.policies))
    assert got[["alert_urgent_value", "alert_materiality"]].values.tolist() == [[2000.0, 0.0], [500.0, 10.0]]
    with pytest.raises(ConfigError, match="medium must not exceed high"):
        load_config(write(tmp_path, "policies:\n  - {category: '*', abc_class: '*', alert_material_value: 900}\n"))


def test_currency_is_an_iso_code(tmp_path):
    assert load_config(write(tmp_path, "currency: EUR\n")).currency == "EUR"
    with pytest.raises(ConfigError, match="currency"):
        load_config(write(tmp_path, "currency: 元\n"))


def test_policy_method_and_optimiser_settings_are_checked():
    cfg = load_config()
    assert cfg.policy.method == "service_level" and cfg.policy.optimiser_target is None
    opt = load_config(
        overrides={"policy": {"method": "optimised", "optimiser_target": {"A": 0.99, "B": 0.95, "C": 0.9}}}
    )
    assert opt.policy.method == "optimised" and opt.policy.optimiser_target == {"A": 0.99, "B": 0.95, "C": 0.9}
    assert load_config(overrides={"policy": {"optimiser_target": 0.97}}).policy.optimiser_target == 0.97
    with pytest.raises(ConfigError, match=r"policy\.method"):
        load_config(overrides={"policy": {"method": "optimized"}})
    with pytest.raises(ConfigError, match=r"policy\.optimiser_measure"):
        load_config(overrides={"policy": {"optimiser_measure": "service"}})
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        load_config(overrides={"policy": {"optimiser_target": 1.0}})
    with pytest.raises(ConfigError, match=r"missing \['C'\]"):
        load_config(overrides={"policy": {"optimiser_target": {"A": 0.99, "B": 0.95}}})
    with pytest.raises(ConfigError, match=r"keyed by ABC class A, B, C, got \['X'\]"):
        load_config(overrides={"policy": {"optimiser_target": {"A": 0.99, "B": 0.95, "C": 0.9, "X": 0.5}}})
    with pytest.raises(ConfigError, match=r"policy\.optimiser_reorder_points"):
        load_config(overrides={"policy": {"optimiser_reorder_points": 2}})
