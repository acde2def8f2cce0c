"""Workbench accounts: planner, manager or admin, their regions and UI language, argon2 passwords.

Accounts live in ``workbench_users`` (migration ``0004``). A disabled account keeps its row (its
decisions name it) but cannot sign in, and its open sessions stop working at the next request.
Passwords are hashed with argon2id (``argon2-cffi`` defaults); the hash is re-computed when the
library's parameters change (:func:`verify_password` returns the new hash to store).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pipelines.workbench.tables import SESSIONS, USERS

ROLES = ("planner", "manager", "admin")
LANGS = ("zh", "en")
MIN_PASSWORD_LENGTH = 10

_HASHER = PasswordHasher()
# verified against when the user does not exist, so that a wrong user name costs as much time as a
# wrong password (no user enumeration by timing)
_DUMMY_HASH = _HASHER.hash("tiaobo-no-such-user")


class UserError(ValueError):
    """An account operation broke a rule; the message names the user and the rule."""


@dataclass(frozen=True)
class User:
    """A signed-in person as the service and the pages see them."""

    name: str
    role: str
    regions: tuple[str, ...] = field(default_factory=tuple)
    lang: str = "zh"
    active: bool = True

    @property
    def sees_all_regions(self) -> bool:
        """Managers and admins see and decide every region; planners only theirs."""
        return self.role in ("manager", "admin")


def _row_user(r: sa.Row) -> User:
    return User(name=r.name, role=r.role, regions=tuple(json.loads(r.regions_json)), lang=r.lang, active=bool(r.active))


def add_user(conn: sa.Connection, name: str, role: str, regions: list[str], lang: str, password: str | None) -> User:
    """Create account ``name``; ``password`` None: sign-in only through the trusted proxy header."""
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise UserError(f"workbench_users.name: {name!r} must be 1 to 64 characters without spaces")
    if role not in ROLES:
        raise UserError(f"workbench_users.role: {role!r} is not one of {', '.join(ROLES)}")
    if lang not in LANGS:
        raise UserError(f"workbench_users.lang: {lang!r} is not one of {', '.join(LANGS)}")
    if role == "planner" and not regions:
        raise UserError(f"user {name}: a planner needs at least one --region (managers and admins see all)")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"user {name}: the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if conn.execute(sa.select(USERS.c.name).where(USERS.c.name == name)).first() is not None:
        raise UserError(f"user {name} already exists (disable it, or choose another name)")
    now = datetime.now(UTC)
    conn.execute(
        USERS.insert().values(
            name=name,
            role=role,
            regions_json=json.dumps(sorted(set(regions)), ensure_ascii=False),
            lang=lang,
            password_hash=_HASHER.hash(password) if password is not None else None,
            active=True,
            created_at=now,
            updated_at=now,
        )
    )
    return User(name, role, tuple(sorted(set(regions))), lang)


def disable_user(conn: sa.Connection, name: str) -> None:
    """Disable ``name`` and revoke its open sessions (the row and its decisions stay)."""
    now = datetime.now(UTC)
    res = conn.execute(sa.update(USERS).where(USERS.c.name == name).values(active=False, updated_at=now))
    if res.rowcount != 1:
        raise UserError(f"user {name} does not exist")
    conn.execute(
        sa.update(SESSIONS).where(SESSIONS.c.user_name == name, SESSIONS.c.revoked_at.is_(None)).values(revoked_at=now)
    )


def set_language(conn: sa.Connection, name: str, lang: str) -> None:
    if lang not in LANGS:
        raise UserError(f"workbench_users.lang: {lang!r} is not one of {', '.join(LANGS)}")
    conn.execute(sa.update(USERS).where(USERS.c.name == name).values(lang=lang, updated_at=datetime.now(UTC)))


def get_user(conn: sa.Connection, name: str) -> User | None:
    r = conn.execute(sa.select(USERS).where(USERS.c.name == name)).first()
    return None if r is None else _row_user(r)


def list_users(conn: sa.Connection) -> list[User]:
    return [_row_user(r) for r in conn.execute(sa.select(USERS).order_by(USERS.c.name)).all()]


def verify_password(conn: sa.Connection, name: str, password: str) -> User | None:
    """The active user ``name`` when ``password`` is theirs, else None (same cost either way)."""
    r = conn.execute(sa.select(USERS).where(USERS.c.name == name)).first()
    stored = r.password_hash if r is not None and r.password_hash else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if r is None or not r.password_hash or not r.active:
        return None
    if _HASHER.check_needs_rehash(stored):
        conn.execute(sa.update(USERS).where(USERS.c.name == name).values(password_hash=_HASHER.hash(password)))
    return _row_user(r)
