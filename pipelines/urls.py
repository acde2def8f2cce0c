"""Database URLs: never shown with their password, and Airflow connections turned into URLs.

Imported by the configuration and by every module that names a database in a message, so it
depends on nothing of the pipeline.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url

# the password runs to the *last* "@" of the URL: a password with an unencoded "@" stays hidden whole
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):\S*@")
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<pw>.*)@(?P<rest>[^@]*)$")


def _raw_password(url: str) -> str | None:
    """The password as written in ``url``, up to the last "@" before the query (a parser that
    stops at the first "@" would take the tail of a password holding one for the host)."""
    m = _USERINFO.match(url.split("?", 1)[0])
    return m.group("pw") if m else None


def redact_url(url: str) -> str:
    """A URL safe for logs and error messages: the password is never shown."""
    raw = _raw_password(url)
    if raw is not None and "@" in raw:  # unencoded "@": no URL parser reads it right; redact by hand
        m = _USERINFO.match(url.split("?", 1)[0])
        assert m is not None
        return f"{m.group('scheme')}{m.group('user')}:***@{m.group('rest')}"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def scrub_secret(text: str, url: str) -> str:
    """``text`` with the password of ``url`` and the URL itself replaced by their redacted forms."""
    pw = _raw_password(url)
    if pw is None:
        try:
            pw = make_url(url).password
        except Exception:
            pw = None
    text = text.replace(url, redact_url(url))
    if pw:
        from urllib.parse import unquote

        for form in {str(pw), unquote(str(pw))}:  # as written, and as a driver decodes it
            text = text.replace(form, "***")
            # a parser that split the password at its first "@" names its tail as the host: hide it
            for i in (j for j, ch in enumerate(form) if ch == "@"):
                if form[i + 1 :]:
                    text = text.replace(form[i + 1 :] + "@", "***@")
    return text


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
