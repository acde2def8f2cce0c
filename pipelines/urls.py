"""Database URLs: never shown with their password, and Airflow connections turned into URLs.

Imported by the configuration and by every module that names a database in a message, so it
depends on nothing of the pipeline.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^@\s]*@")


def redact_url(url: str) -> str:
    """A URL safe for logs and error messages: the password is never shown."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def scrub_secret(text: str, url: str) -> str:
    """``text`` with the password of ``url`` and the URL itself replaced by their redacted forms."""
    try:
        pw = make_url(url).password
    except Exception:
        pw = None
    if pw:
        text = text.replace(str(pw), "***")
    return text.replace(url, redact_url(url))


def scrub_urls(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


def airflow_connection_url(conn_id: str) -> str:
    """SQLAlchemy URL of an Airflow connection (only inside Airflow; imported lazily)."""
    import sqlalchemy as sa
    from airflow.sdk import BaseHook  # only when a conn_id is configured

    conn = BaseHook.get_connection(conn_id)
    scheme = {
        "postgres": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "sqlite": "sqlite",
    }.get(conn.conn_type or "", conn.conn_type or "")
    if scheme == "sqlite":
        return f"sqlite:///{conn.host}"
    url = sa.engine.URL.create(
        scheme,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    )
    return url.render_as_string(hide_password=False)
