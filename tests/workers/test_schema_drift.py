"""The tables the migrations build are the tables app/db/models.py declares: `alembic check`
finds nothing to generate on PostgreSQL (schema changes only through Alembic, and the models
may not drift from what the migrations made)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.stack import ROOT, _postgres_database, unavailable


def test_models_match_the_migrated_schema(tmp_path: Path) -> None:
    # On PostgreSQL only: SQLite reflects unnamed foreign keys without the names models give.
    server = os.environ.get("MODELPRESS_TEST_DATABASE_URL")
    if not server:
        unavailable("MODELPRESS_TEST_DATABASE_URL is not set")
    assert server is not None
    databases = _postgres_database(server)
    database_url = next(databases)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPRESS_")}
    env.update(MODELPRESS_DATABASE_URL=database_url, MODELPRESS_DATA_DIR=str(tmp_path))
    for command in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *command],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    databases.close()  # drops the database
