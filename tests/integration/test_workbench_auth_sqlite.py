"""Workbench sign-in (on a SQLite reporting database): config rules, the secret, signed cookies, the trusted proxy header, throttling."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from pipelines import reporting
from pipelines.config import ConfigError, load_config
from pipelines.workbench import auth
from pipelines.workbench.app import create_app
from tests.factories import add_workbench_users, publish_workbench_night

pytestmark = pytest.mark.integration


def test_config_section_rules_and_the_run_id_ignores_it(tmp_path):
    with pytest.raises(ConfigError, match="proxy_user_header needs trusted_proxies"):
        load_config(overrides={"workbench": {"proxy_user_header": "X-Remote-User"}})
    with pytest.raises(ConfigError, match="base_url"):
        load_config(overrides={"workbench": {"base_url": "tiaobo.example.com"}})
    cfg = load_config(overrides={"workbench": {"base_url": "https://t.example.com/"}})
    assert cfg.workbench.base_url == "https://t.example.com"
    from pipelines.context import RunContext

    a = RunContext(load_config(overrides={"staging_dir": str(tmp_path)}), date(2026, 1, 1))
    b = RunContext(
        load_config(overrides={"staging_dir": str(tmp_path), "workbench": {"planner_approval_limit": 1.0}}),
        date(2026, 1, 1),
    )
    assert a.compute_run_id() == b.compute_run_id()


def test_secret_from_the_environment_only(monkeypatch):
    cfg = load_config().workbench
    monkeypatch.delenv("TIAOBO_SESSION_SECRET", raising=False)
    with pytest.raises(ConfigError, match="TIAOBO_SESSION_SECRET must hold a secret of at least 32"):
        auth.session_secret(cfg)
    monkeypatch.setenv("TIAOBO_SESSION_SECRET", "short")
    with pytest.raises(ConfigError):
        auth.session_secret(cfg)
    monkeypatch.setenv("TIAOBO_SESSION_SECRET", "k" * 32)
    assert auth.session_secret(cfg) == "k" * 32


def test_signed_session_cookie_cannot_be_forged_or_reused_with_another_secret():
    s = auth.Signer("a" * 40, 3600)
    cookie = s.session_cookie("abc")
    assert s.session_id(cookie) == "abc"
    assert s.session_id(cookie[:-2] + "xx") is None
    assert auth.Signer("b" * 40, 3600).session_id(cookie) is None
    assert s.session_id(None) is None and s.session_id("") is None


@pytest.fixture
def url(tmp_path):
    u = f"sqlite:///{tmp_path / 'r.sqlite'}"
    publish_workbench_night(u)
    add_workbench_users(u)
    yield u
    reporting.dispose_engine(u)


def test_proxy_header_believed_only_from_trusted_peers(url):
    # Starlette's TestClient connects from the address "testclient"
    trusted = {
        "reporting": {"url": url},
        "workbench": {"proxy_user_header": "X-Remote-User", "trusted_proxies": ["testclient"]},
    }
    client = TestClient(create_app(load_config(overrides=trusted), secret="z" * 40))
    r = client.get("/transfers", headers={"X-Remote-User": "boss"})
    assert r.status_code == 200 and 'id="me">boss<' in r.text
    assert client.cookies.get(auth.SESSION_COOKIE)  # a session (with its CSRF token) was opened
    assert "/login" in str(client.get("/", headers={"X-Remote-User": "nobody"}).url)
    untrusted = {**trusted, "workbench": {"proxy_user_header": "X-Remote-User", "trusted_proxies": ["10.0.0.9"]}}
    other = TestClient(create_app(load_config(overrides=untrusted), secret="z" * 40))
    assert "/login" in str(other.get("/transfers", headers={"X-Remote-User": "boss"}).url)


def test_login_needs_its_csrf_token_and_next_stays_on_site(url):
    client = TestClient(create_app(load_config(overrides={"reporting": {"url": url}}), secret="z" * 40))
    r = client.post("/login", data={"username": "boss", "password": "correct-horse-9"})
    assert r.status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    r = client.post(
        "/login",
        data={
            "username": "boss",
            "password": "correct-horse-9",
            "csrf_token": token.group(1),
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_alerts_page_names_severity_and_action_in_the_planners_language(url):
    client = TestClient(create_app(load_config(overrides={"reporting": {"url": url}}), secret="z" * 40))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    data = {"username": "east", "password": "correct-horse-9", "csrf_token": token.group(1)}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 303
    page = client.get("/alerts").text  # east: a Chinese-speaking planner of 华东
    table = page[page.index('<table id="alerts">') :]
    assert "批准计划中的调拨" in table and ">高<" in table and ">高</option>" in page
    assert ">approve_transfer<" not in table and ">high<" not in page
