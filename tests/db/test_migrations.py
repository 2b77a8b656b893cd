"""The schema: Alembic head equals the models, the claim constraint holds, SQLite runs in WAL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from rtkvm.db.engine import Database
from rtkvm.db.models import Base, CpuClaim, Host, Instance, Project, User


def test_upgrade_head_matches_models_and_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    db.migrate()  # a second run changes nothing
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert diff == []
    assert version == "0020"
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    db.dispose()


def _instance(session: object, now: float = 1.0) -> tuple[int, str]:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    project = Project(name="p", created_at=now, rt_cores_used=0, instances_used=0)
    session.add(project)
    session.flush()
    user = User(name="u", project_id=project.id, role="member", created_at=now)
    host = Host(name="h", enrolled_at=now)
    session.add_all([user, host])
    session.flush()
    for iid in ("i1", "i2"):
        session.add(
            Instance(
                id=iid,
                name=iid,
                project_id=project.id,
                user_id=user.id,
                flavor_name="f",
                spec="{}",
                state="building",
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()
    return host.id, "i1"


def test_one_pcpu_cannot_be_claimed_twice(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    with db.write() as s:
        host_id, _ = _instance(s)
        s.add(CpuClaim(host_id=host_id, pcpu=3, node=0, instance_id="i1"))
    with pytest.raises(IntegrityError), db.write() as s:
        s.add(CpuClaim(host_id=host_id, pcpu=3, node=0, instance_id="i2"))
    with db.read() as s:
        owners = s.execute(text("SELECT instance_id FROM cpu_claims WHERE pcpu = 3")).all()
    assert [o[0] for o in owners] == ["i1"]  # the failed writer left nothing behind
    db.dispose()


def test_sqlite_runs_in_wal_with_a_busy_timeout(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db", busy_timeout_ms=1234)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_a_bad_url_says_what_to_use() -> None:
    from rtkvm.errors import InputError

    with pytest.raises(InputError, match="sqlite:///PATH"):
        Database("not a url")


def test_upgrade_0001_to_0002_moves_reports_and_summarizes_capacity(db_url: str) -> None:
    db = Database(db_url)
    db.migrate("0001")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO hosts (id, name, enrolled_at, doctor_verdict, doctor_failed, "
                "dataplane_state, physnets, topology, plan) VALUES "
                "(1, 'h1', 0, 'ready', '[]', 'ready', '[]', '{\"t\": 1}', '{\"p\": 2}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO host_nodes (host_id, node, rt_pcpus, rt_total, rt_used, hp2m_total, "
                "hp2m_used, hp1g_total, hp1g_used) VALUES "
                "(1, 0, '1-7', 7, 3, 100, 40, 2, 0), (1, 1, '9-15', 7, 6, 100, 90, 2, 2)"
            )
        )
    db.migrate()
    with db.engine.connect() as conn:
        detail = conn.execute(text("SELECT topology, plan FROM host_details")).one()
        summary = conn.execute(
            text("SELECT rt_free, node_free_max, hp2m_free_max, hp1g_free_max FROM hosts")
        ).one()
    assert tuple(detail) == ('{"t": 1}', '{"p": 2}')
    assert tuple(summary) == (5, 4, 60, 2)
    db.dispose()
