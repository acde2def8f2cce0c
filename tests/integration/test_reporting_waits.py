"""Sessions that stall us on the reporting database: a planner's BI session that reads a view and
leaves its transaction open, a session holding the pipeline's advisory lock. The migration and the
publish give up after ``reporting.lock_timeout_s`` naming the blocking session; nothing changes."""

from __future__ import annotations

import time
from datetime import date

import psycopg
import pytest
from sqlalchemy.engine import make_url

from pipelines import reporting
from tests.factories import make_frames, publication_hash

pytestmark = pytest.mark.integration

D = date(2026, 11, 25)


@pytest.fixture
def short_waits():
    before = dict(reporting.TIMEOUTS)
    reporting.configure_timeouts(1.0, 60.0)
    yield
    reporting.configure_timeouts(before["lock"], before["statement"])


def _session(url: str, application: str) -> psycopg.Connection:
    u = make_url(url)
    conn = psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, application_name=application
    )
    return conn


def test_an_open_bi_transaction_on_a_view_stops_the_migration_naming_it(pg_url, short_waits):
    reporting.migrate(pg_url)
    reporting.publish(pg_url, D, "r1", make_frames(D, "r1"))
    before = publication_hash(pg_url)
    bi = _session(pg_url, "PowerBI-planner")
    bi.execute("select count(*) from v_alerts_today").fetchone()  # ... and the transaction stays open
    try:
        t0 = time.monotonic()
        with pytest.raises(reporting.ReportingLockTimeout) as err:
            reporting.migrate(pg_url)
        assert time.monotonic() - t0 < 15
        pid = bi.info.backend_pid
        assert f"pid {pid}" in str(err.value) and "PowerBI-planner" in str(err.value)
        assert "idle in transaction" in str(err.value) and "pg_terminate_backend" in str(err.value)
    finally:
        bi.close()
    assert publication_hash(pg_url) == before
    reporting.migrate(pg_url)  # once it is gone, the migration goes through


def test_a_session_holding_the_pipeline_lock_stops_the_publish_naming_it(pg_url, short_waits):
    reporting.migrate(pg_url)
    reporting.publish(pg_url, D, "r1", make_frames(D, "r1"))
    before = publication_hash(pg_url)
    holder = _session(pg_url, "someone-elses-script")
    holder.execute("begin")
    holder.execute("select pg_advisory_xact_lock(%s, %s)", (reporting._LOCK_CLASS, D.toordinal()))
    try:
        t0 = time.monotonic()
        with pytest.raises(reporting.ReportingLockTimeout) as err:
            reporting.publish(pg_url, D, "r2", make_frames(D, "r2", shift=1.0))
        assert 0.9 <= time.monotonic() - t0 < 15
        assert f"pid {holder.info.backend_pid}" in str(err.value) and "someone-elses-script" in str(err.value)
        assert "the publish of 2026-11-25" in str(err.value)
    finally:
        holder.close()
    assert publication_hash(pg_url) == before
    reporting.publish(pg_url, D, "r2", make_frames(D, "r2", shift=1.0))  # free again: it publishes
    assert publication_hash(pg_url) != before
