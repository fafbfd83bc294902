"""Storage changes that follow the request's transaction: the database and the store agree.

A stored file whose row never commits is deleted again; a file whose row is deleted goes only
once that delete has committed. A crash between the two steps can still leave an orphan file
(never a row without its file), which is the side we choose to err on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.orm import Session

from app.db.session import on_commit, on_rollback
from app.storage import get_storage


def put_file(session: Session, *, key: str, src: Path) -> None:
    """Store ``src`` under ``key`` now; delete it again unless ``session``'s transaction commits."""
    storage = get_storage()
    storage.put_file(key, src)
    on_rollback(session, lambda: storage.delete(key))


def delete_after_commit(session: Session, *, keys: Iterable[str]) -> None:
    """Delete ``keys`` from storage once ``session``'s transaction commits; keep them if it fails."""
    storage = get_storage()
    pending = list(keys)

    def delete() -> None:
        for key in pending:
            storage.delete(key)

    on_commit(session, delete)
