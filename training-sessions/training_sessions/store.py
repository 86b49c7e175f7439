"""Persistence of training sessions: SQLAlchemy 2 models and one store object.

Works with SQLite (``sqlite:///path``: WAL mode, parent folder created) and
PostgreSQL (``postgresql+psycopg://...``). The schema is owned by the Alembic
migrations in ``migrations/``, applied by :meth:`SessionStore.migrate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    false,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from training_engine.artifacts import read_model_evaluation

from training_sessions import schema_migrations
from training_sessions.epoch_metrics import EPOCH_METRICS, EpochValues
from training_sessions.types import (
    EventKind,
    SessionEvent,
    SessionFilter,
    SessionPerformance,
    SessionPhase,
    SessionProgress,
    SessionStatus,
    SessionView,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "training_sessions_alembic_version"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (what every timestamp column holds)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware, SQLite included."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no offset: what it returns was written in UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class SessionRow(Base):
    """One training session (``training_sessions``)."""

    __tablename__ = "training_sessions"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The SessionJob resolved at submit (its pydantic JSON); None in rows older than 0002.
    job: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    total_epochs: Mapped[int] = mapped_column(Integer, default=0)
    batch: Mapped[int] = mapped_column(Integer, default=0)
    total_batches: Mapped[int] = mapped_column(Integer, default=0)
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    checkpoint_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    resume_count: Mapped[int] = mapped_column(Integer, default=0)
    test_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    baseline_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A server default only: rows written with the columns of older revisions leave it out.
    stopped_early: Mapped[bool] = mapped_column(Boolean, server_default=false())
    best_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Launches so far, and where the last one ran (see training_sessions.runners).
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    node_address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The last event number given (events are numbered per training from 1), and the
    # number kept for the stream's ``end`` while the training is final (migration 0006).
    event_seq: Mapped[int] = mapped_column(Integer, server_default="0")
    end_event_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What lists filter on (migration 0007): the resolved strategy's name, and lists kept
    # as ``|A|B|`` (see :func:`list_key`) so a member is found the same way on both databases.
    strategy_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    symbols_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    timeframes_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    tags_key: Mapped[str | None] = mapped_column(Text, nullable=True)


class EpochRow(Base):
    """One finished epoch of a session (``training_epochs``); unique per (session, epoch).

    Its metric columns are :data:`~training_sessions.epoch_metrics.EPOCH_METRICS`.
    """

    __tablename__ = "training_epochs"
    __table_args__ = (UniqueConstraint("session_id", "epoch", name="uq_training_epochs_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("training_sessions.id", ondelete="CASCADE"), index=True
    )
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    learning_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    epoch_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    samples_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)


class EventRow(Base):
    """One entry of a session's event log (``training_events``); see :class:`SessionEvent`.

    ``seq`` numbers a session's events from 1 (the id its event stream sends); ``id``
    counts across sessions and only orders the table.
    """

    __tablename__ = "training_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer, server_default="0")
    session_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("training_sessions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# An event to append: its kind and its JSON data.
NewEvent = tuple[EventKind, dict[str, Any]]


def create_db_engine(database_url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL mode, a busy timeout and its folder created."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if in_memory:
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


class SessionStore:
    """Reads and writes sessions; every method opens and commits its own transaction."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.engine = create_db_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------ lifecycle

    def migrate(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision`` (idempotent)."""
        schema_migrations.upgrade(self.engine, MIGRATIONS_DIR, VERSION_TABLE, revision=revision)

    @staticmethod
    def head_revision() -> str:
        """The newest migration of the session tables."""
        return schema_migrations.head_revision(MIGRATIONS_DIR)

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ sessions

    def insert(
        self,
        row: SessionRow,
        events: Sequence[NewEvent] = (),
        *,
        deadline: datetime | None = None,
    ) -> bool:
        """Insert a new session and its first events; IntegrityError when the id exists.

        With a ``deadline``, the clock is read inside the transaction after the insert:
        past the deadline the transaction is rolled back and False is returned.
        """
        row.event_seq = len(events)
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            session.add_all(_event_rows(row.id, events, first_seq=1))
            if deadline is not None and utcnow() > deadline:
                session.rollback()
                return False
        return True

    def get(self, training_id: str) -> SessionRow | None:
        with self._sessions() as session:
            return session.get(SessionRow, training_id)

    def page(
        self, where: SessionFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[SessionRow], int]:
        """Newest first, with the total count for the same filter."""
        query = select(SessionRow)
        count = select(func.count()).select_from(SessionRow)
        for condition in _conditions(where):
            query, count = query.where(condition), count.where(condition)
        query = query.order_by(SessionRow.created_at.desc(), SessionRow.id.desc())
        with self._sessions() as session:
            rows = list(session.scalars(query.limit(limit).offset(offset)))
            total = int(session.scalar(count) or 0)
        return rows, total

    def count_by_status(self) -> dict[str, int]:
        """How many sessions are in each status that has any."""
        query = select(SessionRow.status, func.count()).group_by(SessionRow.status)
        with self._sessions() as session:
            return {status: int(count) for status, count in session.execute(query)}

    def with_status(self, statuses: Iterable[SessionStatus]) -> list[SessionRow]:
        """Sessions in any of ``statuses``, oldest first (the original queue order)."""
        query = (
            select(SessionRow)
            .where(SessionRow.status.in_([status.value for status in statuses]))
            .order_by(SessionRow.created_at, SessionRow.id)
        )
        with self._sessions() as session:
            return list(session.scalars(query))

    def update(self, training_id: str, events: Sequence[NewEvent] = (), **values: Any) -> None:
        """Set columns of one session other than its status (see :meth:`move`).

        ``events`` are appended in the same transaction.
        """
        if "status" in values:
            raise ValueError("statuses change through SessionStore.move only")
        with self._sessions.begin() as session:
            if values:
                statement = update(SessionRow).where(SessionRow.id == training_id)
                session.execute(statement.values(**values))
            _append_events(session, training_id, events)

    def record_progress(
        self,
        training_id: str,
        columns: Mapping[str, Any],
        metrics: Mapping[str, float | None],
        entry: NewEvent,
        epoch: EpochValues | None = None,
    ) -> None:
        """Record one progress event of a running session, in one transaction.

        The row is the only place a session's progress is kept: ``columns`` (counters,
        ``percent``, ETA) are set, except that ``percent`` never goes back (a resume
        replays lost batches); ``metrics`` update the latest values; ``entry`` is logged
        with the percent recorded. An ``epoch`` is upserted, its batch ``progress``
        events are dropped (the epoch entry sums them up) and ``best_epoch`` follows.
        """
        with self._sessions.begin() as session:
            row = session.get(SessionRow, training_id, with_for_update=True)
            if row is None:
                return
            percent = max(float(columns.get("percent", 0.0)), row.percent or 0.0)
            for name, value in columns.items():
                setattr(row, name, value)
            row.percent = percent
            row.metrics = {**(row.metrics or {}), **metrics}
            kind, data = entry
            row.event_seq = (row.event_seq or 0) + 1
            session.add_all(
                _event_rows(
                    training_id, [(kind, {**data, "percent": row.percent})], first_seq=row.event_seq
                )
            )
            if epoch is not None:
                # The entry first: SQLite reuses the highest ids of deleted rows, and event
                # ids must only grow (clients resume after the last id they received).
                session.flush()
                session.execute(
                    delete(EventRow).where(
                        EventRow.session_id == training_id, EventRow.kind == "progress"
                    )
                )
                session.execute(self._upsert_epoch_statement(training_id, epoch))
                row.best_epoch = session.scalar(_best_epoch_query(training_id))

    def append_log(
        self, training_id: str, line: dict[str, Any], cap: int, cut: dict[str, Any]
    ) -> None:
        """Log one line of a session's run; past ``cap`` lines, ``cut`` once, then nothing."""
        count = select(func.count()).where(
            EventRow.session_id == training_id, EventRow.kind == "log"
        )
        with self._sessions.begin() as session:
            logged = int(session.scalar(count) or 0)
            if logged < cap:
                _append_events(session, training_id, [("log", line)])
            elif logged == cap:
                _append_events(session, training_id, [("log", cut)])

    def move(
        self,
        training_id: str,
        old: SessionStatus,
        new: SessionStatus,
        events: Sequence[NewEvent] = (),
        **values: Any,
    ) -> bool:
        """Set the status to ``new`` (and other columns) only if it is still ``old``.

        ``events`` are appended in the same transaction: whoever sees the new status
        also finds its events in the log. Returns False when the session is gone or
        in another status by now (and then appends nothing). A move to a final status
        keeps the next event number for the stream's ``end``.
        """
        query = (
            update(SessionRow)
            .where(SessionRow.id == training_id, SessionRow.status == old.value)
            .values(status=new.value, end_event_seq=None, **values)
        )
        with self._sessions.begin() as session:
            moved = session.execute(query).rowcount == 1  # type: ignore[attr-defined]
            if moved:
                _append_events(session, training_id, events, keep_end=new.is_final())
        return moved

    def delete(self, training_id: str) -> None:
        """Remove a session, its epochs and its event log."""
        with self._sessions.begin() as session:
            session.execute(delete(EventRow).where(EventRow.session_id == training_id))
            session.execute(delete(EpochRow).where(EpochRow.session_id == training_id))
            session.execute(delete(SessionRow).where(SessionRow.id == training_id))

    # ------------------------------------------------------------ event log

    def append_events(self, training_id: str, events: Sequence[NewEvent]) -> None:
        """Append events to a session's log, in order."""
        with self._sessions.begin() as session:
            _append_events(session, training_id, events)

    def events_after(self, training_id: str, after_id: int, limit: int) -> list[SessionEvent]:
        """At most ``limit`` events of the session numbered above ``after_id``, oldest first."""
        query = (
            select(EventRow)
            .where(EventRow.session_id == training_id, EventRow.seq > after_id)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        with self._sessions() as session:
            rows = list(session.scalars(query))
        return [_event(row) for row in rows]

    def all_events_after(self, after_id: int, limit: int) -> list[tuple[str, int, SessionEvent]]:
        """At most ``limit`` events of every session with table ids above ``after_id``,
        oldest first, each as (session id, table id, event): one read for every stream a
        service follows, its cursor the table id (an event's own id counts per session)."""
        query = select(EventRow).where(EventRow.id > after_id).order_by(EventRow.id).limit(limit)
        with self._sessions() as session:
            rows = list(session.scalars(query))
        return [(row.session_id, row.id, _event(row)) for row in rows]

    def latest_event_id(self) -> int:
        """The highest event id logged so far (0: none)."""
        with self._sessions() as session:
            return int(session.scalar(select(func.max(EventRow.id))) or 0)

    # ------------------------------------------------------------ epochs

    def upsert_epoch(self, training_id: str, epoch: EpochValues) -> None:
        """Write one epoch's metrics; a resumed run re-reporting an epoch replaces it."""
        with self._sessions.begin() as session:
            session.execute(self._upsert_epoch_statement(training_id, epoch))

    def _upsert_epoch_statement(self, training_id: str, epoch: EpochValues) -> Any:
        changes = {name: epoch.get(name) for name in EPOCH_METRICS}
        values = {"session_id": training_id, "epoch": epoch["epoch"], **changes}
        if self.engine.dialect.name == "postgresql":
            statement: Any = pg_insert(EpochRow).values(**values)
        else:
            statement = sqlite_insert(EpochRow).values(**values)
        return statement.on_conflict_do_update(index_elements=["session_id", "epoch"], set_=changes)

    def epochs(self, training_id: str) -> list[dict[str, float | int]]:
        """The per-epoch history in epoch order."""
        query = select(EpochRow).where(EpochRow.session_id == training_id).order_by(EpochRow.epoch)
        with self._sessions() as session:
            rows = list(session.scalars(query))
        history: list[dict[str, float | int]] = []
        for row in rows:
            item: dict[str, float | int] = {"epoch": row.epoch}
            for name in EPOCH_METRICS:
                value = getattr(row, name)
                if value is not None:
                    item[name] = value
            history.append(item)
        return history


def list_key(values: Sequence[str] | None) -> str | None:
    """``["A", "B"]`` as ``"|A|B|"``: a member ``A`` is then ``LIKE '%|A|%'``."""
    return "|" + "|".join(values) + "|" if values else None


def _has_member(column: Any, value: str) -> Any:
    # Case-insensitive on both databases (SQLite's LIKE is, PostgreSQL's is not).
    return func.lower(column).contains(f"|{value.lower()}|", autoescape=True)


def _conditions(where: SessionFilter) -> list[Any]:
    conditions: list[Any] = []
    if where.status is not None:
        conditions.append(SessionRow.status == where.status)
    if where.started_through is not None:
        door = SessionRow.request["started_through"].as_string() == where.started_through
        conditions.append(door)
    if where.strategy is not None:
        conditions.append(SessionRow.strategy_name == where.strategy)
    if where.symbol is not None:
        conditions.append(_has_member(SessionRow.symbols_key, where.symbol))
    if where.timeframe is not None:
        conditions.append(_has_member(SessionRow.timeframes_key, where.timeframe))
    if where.tag is not None:
        conditions.append(_has_member(SessionRow.tags_key, where.tag))
    if where.created_after is not None:
        conditions.append(SessionRow.created_at >= where.created_after)
    if where.created_before is not None:
        conditions.append(SessionRow.created_at < where.created_before)
    return conditions


def _best_epoch_query(training_id: str) -> Any:
    """The epoch with the lowest validation loss so far (the first of equals)."""
    return (
        select(EpochRow.epoch)
        .where(EpochRow.session_id == training_id, EpochRow.val_loss.is_not(None))
        .order_by(EpochRow.val_loss, EpochRow.epoch)
        .limit(1)
    )


def _event(row: EventRow) -> SessionEvent:
    return SessionEvent(id=row.seq, kind=row.kind, data=row.data, created_at=row.created_at)  # type: ignore[arg-type]


def _event_rows(training_id: str, events: Sequence[NewEvent], first_seq: int) -> list[EventRow]:
    now = utcnow()
    return [
        EventRow(
            session_id=training_id, seq=first_seq + index, kind=kind, data=data, created_at=now
        )
        for index, (kind, data) in enumerate(events)
    ]


def _append_events(
    session: Session, training_id: str, events: Sequence[NewEvent], *, keep_end: bool = False
) -> None:
    """Number ``events`` after the session's last and add them, in the caller's transaction.

    The counter is raised by an UPDATE first: that write locks the session's row (or the
    SQLite database) until the commit, so two writers never take the same numbers.
    ``keep_end`` also keeps the number after them for the stream's ``end`` event.
    """
    taken = len(events) + (1 if keep_end else 0)
    if taken == 0:
        return
    raised = (
        update(SessionRow)
        .where(SessionRow.id == training_id)
        .values(event_seq=SessionRow.event_seq + taken)
    )
    session.execute(raised)
    last = session.scalar(select(SessionRow.event_seq).where(SessionRow.id == training_id))
    if last is None:
        return  # the session is gone
    if keep_end:
        session.execute(
            update(SessionRow).where(SessionRow.id == training_id).values(end_event_seq=last)
        )
    session.add_all(_event_rows(training_id, events, first_seq=last - taken + 1))


def to_view(row: SessionRow) -> SessionView:
    """The client's view of a stored session."""
    return SessionView(
        training_id=row.id,
        status=SessionStatus(row.status),
        request=dict(row.request or {}),
        progress=SessionProgress(
            epoch=row.epoch or 0,
            total_epochs=row.total_epochs or 0,
            batch=row.batch or 0,
            total_batches=row.total_batches or 0,
            percent=float(row.percent or 0.0),
            eta_seconds=row.eta_seconds,
        ),
        metrics=dict(row.metrics or {}),
        device=row.device,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        model_path=row.model_path,
        checkpoint_path=row.checkpoint_path,
        resume_count=row.resume_count or 0,
        phase=cast(SessionPhase, row.phase) if row.phase else None,
        stopped_early=bool(row.stopped_early),
        best_epoch=row.best_epoch,
        attempt=row.attempt or 0,
        node=row.node,
        node_address=row.node_address,
        end_event_id=row.end_event_seq,
        strategy_name=row.strategy_name,
        resolved_symbols=_members(row.symbols_key),
        resolved_timeframes=_members(row.timeframes_key),
        tags=list(row.tags or []),
    )


def _members(key: str | None) -> list[str] | None:
    return key.strip("|").split("|") if key else None


def to_performance(row: SessionRow, history: list[dict[str, float | int]]) -> SessionPerformance:
    """Per-epoch history plus the test and baseline metrics of a stored session."""
    return SessionPerformance(
        training_id=row.id,
        status=SessionStatus(row.status),
        history=history,
        test_metrics=row.test_metrics,
        baseline_metrics=row.baseline_metrics,
        evaluation=read_model_evaluation(row.model_path),
    )
