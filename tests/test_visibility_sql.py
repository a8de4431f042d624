"""The SQL visibility filter is exact on both backends: it keeps exactly the rows
``can_see`` keeps (public, own, restricted to one of the caller's groups or past its
embargo), so counts over it leak nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from bigmap.schemas.common import Role, utcnow
from bigmap.store import models as m
from bigmap.store.access import Actor, can_see, visibility_clause
from bigmap.store.db import Database, upgrade


@pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)
def test_visibility_clause_matches_can_see(fresh_db_url):
    upgrade(fresh_db_url)
    db = Database(fresh_db_url)
    try:
        with db.write() as s:
            owner = m.User(name="owner", password_hash="x", role="tenant", groups=[])
            s.add(owner)
            s.flush()
            now = utcnow()
            cases = [
                ("public", [], None),
                ("confidential", [], None),
                ("restricted", [], None),
                ("restricted", ["lab-a"], None),
                ("restricted", ["lab-b", "lab-c"], None),
                ("restricted", ["lab-b"], now - timedelta(days=1)),
                ("restricted", ["lab-b"], now + timedelta(days=1)),
                ("confidential", ["lab-a"], now - timedelta(days=1)),
            ]
            for access, groups, embargo in cases:
                s.add(
                    m.Request(
                        quantity="q",
                        methods=["m"],
                        parameters={},
                        status="pending",
                        status_info={},
                        owner_id=owner.id,
                        access=access,
                        access_groups=groups,
                        embargo_until=embargo,
                    )
                )
        readers = [
            Actor(uuid.uuid4(), "a", Role.tenant, frozenset({"lab-a"})),
            Actor(uuid.uuid4(), "c", Role.observer, frozenset({"lab-c", "lab-x"})),
            Actor(uuid.uuid4(), "nobody", Role.tenant, frozenset()),
            Actor(owner.id, "owner", Role.tenant, frozenset()),
            Actor(uuid.uuid4(), "root", Role.admin, frozenset()),
        ]
        with db.read() as s:
            rows = list(s.scalars(select(m.Request)))
            for actor in readers:
                expected = {r.id for r in rows if can_see(actor, r)}
                got = set(
                    s.scalars(
                        select(m.Request.id).where(
                            visibility_clause(actor, m.Request, db.engine.dialect.name)
                        )
                    )
                )
                assert got == expected, actor.name
    finally:
        db.dispose()
