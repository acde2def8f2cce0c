"""Sign-in for the workbench: server-side sessions in a signed cookie, CSRF tokens, throttling.

- **Session**: ``workbench_sessions`` holds one row per signed-in browser (user, CSRF token,
  expiry, revocation). The cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure`` when
  ``workbench.secure_cookies``) carries only the session id, signed with the secret of the
  environment variable ``workbench.session_secret_env`` (itsdangerous, timestamped: it also expires
  after ``session_max_age_seconds``). Logout and disabling the user revoke the row, so a copied
  cookie stops working at once.
- **CSRF**: every form carries the session's token; every POST is refused (403) unless the token
  matches (:func:`csrf_ok`, constant-time). The login form, before any session exists, uses a
  signed double-submit token (a cookie and the same value in the form).
- **Throttling**: every login attempt is a row of ``workbench_login_attempts``; after
  ``login_max_failures`` failures for the same user name from the same IP within
  ``login_window_minutes`` the next attempts are refused without checking the password.
- **Reverse proxy**: when ``workbench.proxy_user_header`` is set, a request coming from one of
  ``trusted_proxies`` (the TCP peer's address, never a forwarded header) with that header is signed
  in as the named, active account; the header from any other address is ignored.
"""

from __future__ import annotations

import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer

from pipelines.config import ConfigError, WorkbenchConfig
from pipelines.workbench.tables import LOGIN_ATTEMPTS, SESSIONS, USERS

SESSION_COOKIE = "tiaobo_session"
LOGIN_CSRF_COOKIE = "tiaobo_login_csrf"
MIN_SECRET_LENGTH = 32


def session_secret(cfg: WorkbenchConfig) -> str:
    """The signing secret from the environment variable the config names (never from the file)."""
    value = os.environ.get(cfg.session_secret_env, "")
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"workbench.session_secret_env: environment variable {cfg.session_secret_env} must hold a secret of at"
            f" least {MIN_SECRET_LENGTH} characters (e.g. export {cfg.session_secret_env}=$(python -c"
            " 'import secrets; print(secrets.token_urlsafe(32))'))"
        )
    return value


class Signer:
    """Signs session ids and login tokens (timestamped, salted per purpose)."""

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="tiaobo-workbench-session")
        self._login = URLSafeTimedSerializer(secret, salt="tiaobo-workbench-login")
        self.max_age = max_age_seconds

    def session_cookie(self, session_id: str) -> str:
        return self._session.dumps(session_id)

    def session_id(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            value = self._session.loads(cookie, max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        return value if isinstance(value, str) else None

    def login_token(self) -> str:
        return self._login.dumps(secrets.token_urlsafe(16))

    def login_token_ok(self, cookie: str | None, form: str | None) -> bool:
        if not cookie or not form or not hmac.compare_digest(cookie, form):
            return False
        try:
            self._login.loads(cookie, max_age=3600)
        except BadSignature:
            return False
        return True


@dataclass(frozen=True)
class Session:
    session_id: str
    user_name: str
    csrf_token: str


def create_session(conn: sa.Connection, user_name: str, client_ip: str, max_age_seconds: int) -> Session:
    now = datetime.now(UTC)
    s = Session(uuid.uuid4().hex + secrets.token_hex(8), user_name, secrets.token_urlsafe(32))
    conn.execute(
        SESSIONS.insert().values(
            session_id=s.session_id,
            user_name=user_name,
            csrf_token=s.csrf_token,
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_seconds),
            revoked_at=None,
            client_ip=client_ip,
        )
    )
    return s


def _aware(v: datetime) -> datetime:
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def get_session(conn: sa.Connection, session_id: str | None) -> Session | None:
    """The live session: not revoked, not expired, its user active."""
    if not session_id:
        return None
    r = conn.execute(
        sa.select(SESSIONS.c.session_id, SESSIONS.c.user_name, SESSIONS.c.csrf_token, SESSIONS.c.expires_at)
        .join(USERS, USERS.c.name == SESSIONS.c.user_name)
        .where(SESSIONS.c.session_id == session_id, SESSIONS.c.revoked_at.is_(None), USERS.c.active.is_(True))
    ).first()
    if r is None or _aware(r.expires_at) <= datetime.now(UTC):
        return None
    return Session(r.session_id, r.user_name, r.csrf_token)


def revoke_session(conn: sa.Connection, session_id: str) -> None:
    conn.execute(
        sa.update(SESSIONS)
        .where(SESSIONS.c.session_id == session_id, SESSIONS.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return session is not None and bool(token) and hmac.compare_digest(session.csrf_token, str(token))


def recent_failures(conn: sa.Connection, user_name: str, client_ip: str, window_minutes: int) -> int:
    since = datetime.now(UTC) - timedelta(minutes=window_minutes)
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(LOGIN_ATTEMPTS)
            .where(
                LOGIN_ATTEMPTS.c.user_name == user_name,
                LOGIN_ATTEMPTS.c.client_ip == client_ip,
                LOGIN_ATTEMPTS.c.at >= since,
                LOGIN_ATTEMPTS.c.success.is_(False),
            )
        ).scalar_one()
    )


def record_attempt(conn: sa.Connection, user_name: str, client_ip: str, success: bool) -> None:
    conn.execute(
        LOGIN_ATTEMPTS.insert().values(
            attempt_id=uuid.uuid4().hex,
            user_name=user_name[:200],
            client_ip=client_ip,
            at=datetime.now(UTC),
            success=success,
        )
    )


def proxy_user(cfg: WorkbenchConfig, client_ip: str | None, headers: dict[str, str]) -> str | None:
    """The user name the trusted reverse proxy asserts, or None (not configured, untrusted peer, no header)."""
    if not cfg.proxy_user_header or client_ip is None or client_ip not in cfg.trusted_proxies:
        return None
    name = headers.get(cfg.proxy_user_header.lower(), "").strip()
    return name or None
