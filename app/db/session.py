"""Engine, sessions, and the request-scoped transaction that owns commit and rollback."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from app.settings import get_settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # API and workers share the file: WAL lets readers proceed during a write,
    # and busy_timeout waits for a lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# Connections one process may hold: docs/scaling.md multiplies them by the processes deployed.
POOL_SIZE, POOL_MAX_OVERFLOW = 5, 10


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_MAX_OVERFLOW
    )


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


_ON_COMMIT = "modelpress.on_commit"
_ON_ROLLBACK = "modelpress.on_rollback"
log = logging.getLogger("modelpress.db")


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` only once the current transaction has committed (e.g. enqueue a job id,
    delete a stored file whose row is gone). Dropped if the transaction does not commit."""
    session.info.setdefault(_ON_COMMIT, []).append(callback)


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Undo a side effect outside the database (e.g. a stored upload) if the current
    transaction ends without committing: a failed commit, a rollback, or a close."""
    session.info.setdefault(_ON_ROLLBACK, []).append(callback)


def _run_all(callbacks: list[Callable[[], None]], when: str) -> None:
    # The transaction's outcome is settled: one failing side effect must neither skip the
    # others nor turn a committed request into an error (or mask the error of a failed one).
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("a side effect %s failed", when)


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
    _run_all(session.info.pop(_ON_COMMIT, []), "after commit")


@event.listens_for(Session, "after_transaction_end")
def _run_on_rollback(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction decides; a savepoint's or a flush's inner transaction
    # ending says nothing about whether the work commits. After a commit both lists are empty.
    if transaction.parent is not None:
        return
    session.info.pop(_ON_COMMIT, None)
    _run_all(session.info.pop(_ON_ROLLBACK, []), "undoing an uncommitted transaction")


def get_session() -> Generator[Session, None, None]:
    """Request dependency: one transaction per request, committed here and nowhere else."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")
# What a lost connection, a refused one or a restarting server raises; not a failed constraint.
DATABASE_AWAY = (OperationalError, InterfaceError)


class Backoff:
    """Delays that double from ``first_s`` up to ``most_s``: how often to knock while away."""

    def __init__(self, first_s: float = 0.2, most_s: float = 5.0) -> None:
        self.first_s, self.most_s = first_s, most_s
        self.next_s = first_s

    def step(self) -> float:
        delay, self.next_s = self.next_s, min(self.next_s * 2, self.most_s)
        return delay

    def reset(self) -> None:
        self.next_s = self.first_s


def retry_while_away(call: Callable[[], T], *, what: str, for_s: float) -> T:
    """``call()``, retried with back-off while the database is unreachable, for up to ``for_s``
    seconds; then its error. ``call`` must open its own session: each try starts afresh."""
    give_up = time.monotonic() + for_s
    backoff = Backoff()
    while True:
        try:
            return call()
        except DATABASE_AWAY as exc:
            delay = backoff.step()
            if time.monotonic() + delay > give_up:
                raise
            log.warning(
                "database unreachable (%s); %s again in %.1f s", type(exc).__name__, what, delay
            )
            time.sleep(delay)
