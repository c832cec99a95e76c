"""Indexer fixtures: a catalog database per test (SQLite file, and PostgreSQL when
`CODEXFIELD_TEST_PG_URL` is set — run `tools/ensure_postgres.sh` to get one), and a small
deployed system (registry, identity, reputation over a mock license manager)."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import text

from codexfield.indexer.db import make_engine, migrate
from codexfield.indexer.ingest import Indexer, Web3Source

PG_URL = os.environ.get("CODEXFIELD_TEST_PG_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = make_engine(tmp_path / "catalog.db")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    if not PG_URL:
        pytest.skip("CODEXFIELD_TEST_PG_URL is not set (tools/ensure_postgres.sh prints one)")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    eng = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    migrate(eng)
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


class System:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def addresses(self) -> dict[str, str]:
        return {
            "CapsuleRegistry": str(self.registry.address),
            "IdentityRegistry": str(self.identity.address),
            "Reputation": str(self.reputation.address),
        }


@pytest.fixture(scope="module")
def system(project, admin, chain):
    registry = admin.deploy(project.CapsuleRegistry, admin, 500)
    identity = admin.deploy(project.IdentityRegistry)
    lm = admin.deploy(project.MockLicenseManager)
    reputation = admin.deploy(project.Reputation, registry, lm, admin)
    return System(
        registry=registry, identity=identity, lm=lm, reputation=reputation, start=chain.blocks.head.number - 4
    )


@pytest.fixture
def source(chain):
    return Web3Source(chain.provider.web3)


@pytest.fixture
def make_indexer(engine, source, system, chain):
    def _make(**kw):
        kw.setdefault("start_block", system.start)
        return Indexer(engine, source, chain.chain_id, system.addresses, **kw)

    return _make
