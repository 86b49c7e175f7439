"""Where each training runs, who started it, and the last state the proxy saw of it.

One table, ``proxy_routed_trainings``, in the backend's database (SQLite by
default, PostgreSQL through ``BACKEND_DATABASE_URL``); it may share that
database with the local session runtime. Its schema comes from the Alembic
migrations in ``migrations/`` (version table ``backend_proxy_alembic_version``),
applied when a :class:`RoutingTable` opens; a table made by ``create_all``
before them is adopted. Rows are written before the host is
called, so a backend that dies mid-start still knows where to look. Reads are
served from an in-memory copy: this process is the table's only writer.

It is also the backend's one list: host trainings started elsewhere are mirrored in
it (``origin="host"``) from the host's own list, and the columns the list filters on
(strategy, symbols, timeframes, tags) are written from each row's last state, so a
filter, its page and its total come from one query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    false,
    func,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from training_sessions import schema_migrations
from training_sessions.store import UTCDateTime, create_db_engine, utcnow

RoutedTo = Literal["host_service", "local"]
# Who started a training: this backend, or someone else on the host (mirrored here).
Origin = Literal["backend", "host"]
# Why a training runs locally.
FallbackReason = Literal[
    "disabled", "breaker_open", "host_unreachable", "host_error", "host_at_capacity"
]
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "backend_proxy_alembic_version"
# The revision that creates the table create_all used to make.
FIRST_REVISION = "0001"
# A run that is over: nothing moves it again but a client's resume.
FINAL_STATUSES = ("completed", "failed", "cancelled")


class Base(DeclarativeBase):
    pass


class RoutedTrainingRow(Base):
    __tablename__ = "proxy_routed_trainings"

    training_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    routed_to: Mapped[str] = mapped_column(String(16))
    fallback_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # False while a host start is ambiguous: the host may or may not have it.
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    last_state: Mapped[dict[str, Any]] = mapped_column(JSON)
    stop_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(8), server_default="backend")
    # What the list filters on, from the last state: ",AAPL,MSFT," (one LIKE finds a member).
    strategy: Mapped[str | None] = mapped_column(Text, nullable=True)
    symbols: Mapped[str | None] = mapped_column(Text, nullable=True)
    timeframes: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[str | None] = mapped_column(Text, nullable=True)


# The table as ``create_all`` made it before migrations (revision 0001's columns), frozen
# here: a database holding it is adopted at FIRST_REVISION, then migrated like any other.
CREATED_BEFORE_MIGRATIONS = Table(
    RoutedTrainingRow.__tablename__,
    MetaData(),
    Column("training_id", String(128), primary_key=True),
    Column("routed_to", String(16), nullable=False),
    Column("fallback_reason", String(32), nullable=True),
    Column("confirmed", Boolean, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("last_state", JSON, nullable=False),
    Column("stop_pending", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Route:
    """One routing-table row as the proxy uses it."""

    training_id: str
    routed_to: RoutedTo
    fallback_reason: FallbackReason | None
    confirmed: bool
    last_state: dict[str, Any]
    stop_pending: bool
    created_at: datetime
    origin: Origin = "backend"
    # A fallback training's tags as the runtime last answered them (for the ?tag= filter).
    local_tags: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        return str(self.last_state.get("status", "unknown"))

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags its last state names (the host's), else those kept here."""
        tags = self.last_state.get("tags")
        return tuple(str(tag) for tag in tags) if isinstance(tags, list) else self.local_tags


@dataclass(frozen=True, slots=True)
class RouteFilter:
    """What the list asks for; ``host_unreachable``: the host cannot be asked right now."""

    status: str | None = None
    strategy: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    tag: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50
    offset: int = 0
    host_unreachable: bool = False


class RoutingTable:
    """Sync and thread-safe; async callers run writes in a worker thread."""

    def __init__(self, database_url: str) -> None:
        self._engine = create_db_engine(database_url)
        schema_migrations.upgrade(
            self._engine,
            MIGRATIONS_DIR,
            VERSION_TABLE,
            adopt=(CREATED_BEFORE_MIGRATIONS, FIRST_REVISION),
        )
        self._lock = threading.Lock()
        self._update_lock = threading.Lock()
        self._cache: dict[str, Route] = {}

    def close(self) -> None:
        self._engine.dispose()

    def cached(self, training_id: str) -> Route | None:
        """The route if it is in memory; never touches the database."""
        with self._lock:
            return self._cache.get(training_id)

    def get(self, training_id: str) -> Route | None:
        with self._lock:
            cached = self._cache.get(training_id)
        if cached is not None:
            return cached
        with Session(self._engine) as session:
            row = session.get(RoutedTrainingRow, training_id)
            route = _to_route(row) if row is not None else None
        if route is not None:
            with self._lock:
                self._cache[training_id] = route
        return route

    def add(
        self,
        training_id: str,
        routed_to: RoutedTo,
        *,
        fallback_reason: FallbackReason | None,
        confirmed: bool,
        last_state: dict[str, Any],
    ) -> Route:
        """Insert or replace the row for ``training_id``."""
        now = utcnow()
        existing = self.get(training_id)
        route = Route(
            training_id=training_id,
            routed_to=routed_to,
            fallback_reason=fallback_reason,
            confirmed=confirmed,
            last_state=last_state,
            stop_pending=False,
            created_at=existing.created_at if existing else now,
        )
        self._write(route)
        return route

    def update(self, training_id: str, **changes: Any) -> Route | None:
        """Change fields of a route (last_state, confirmed, stop_pending, ...)."""
        # Read-modify-write as one step: two concurrent updates (a pending stop delivered,
        # a status remembered) must not undo each other's change.
        with self._update_lock:
            current = self.get(training_id)
            if current is None:
                return None
            route = replace(current, **changes)
            if route != current:
                self._write(route)
            return route

    def delete(self, training_id: str) -> None:
        with self._lock:
            self._cache.pop(training_id, None)
        with Session(self._engine) as session, session.begin():
            row = session.get(RoutedTrainingRow, training_id)
            if row is not None:
                session.delete(row)

    def unconfirmed_host_routes(self) -> list[Route]:
        """Host starts whose fate is still unknown (ambiguous and not yet settled)."""
        return self._routes_where(
            RoutedTrainingRow.routed_to == "host_service", RoutedTrainingRow.confirmed.is_(False)
        )

    def pending_stops(self) -> list[Route]:
        return self._routes_where(RoutedTrainingRow.stop_pending.is_(True))

    def list_routes(self, wanted: RouteFilter) -> tuple[list[Route], int]:
        """Routes newest first, filtered on their last state, and the total that matched.

        While the host cannot be asked every host training's status is
        ``host_unreachable``, and the status filter reads it so.
        """
        conditions = _conditions(wanted)
        query = select(RoutedTrainingRow).where(*conditions)
        count = select(func.count()).select_from(RoutedTrainingRow).where(*conditions)
        query = query.order_by(
            RoutedTrainingRow.created_at.desc(), RoutedTrainingRow.training_id.desc()
        )
        with Session(self._engine) as session:
            rows = session.scalars(query.limit(wanted.limit).offset(wanted.offset)).all()
            total = session.scalar(count) or 0
            return [_to_route(row) for row in rows], int(total)

    def count_by_status(self, *, host_unreachable: bool) -> dict[tuple[str, str, str], int]:
        """Trainings by (routed_to, origin, status) as the list shows them."""
        columns = (RoutedTrainingRow.routed_to, RoutedTrainingRow.origin, RoutedTrainingRow.status)
        query = select(*columns, func.count()).group_by(*columns)
        counts: dict[tuple[str, str, str], int] = {}
        with Session(self._engine) as session:
            for routed_to, origin, status, count in session.execute(query):
                if host_unreachable and routed_to == "host_service" and status != "unknown":
                    status = "host_unreachable"
                key = (routed_to, origin, status)
                counts[key] = counts.get(key, 0) + int(count)
        return counts

    def local_routes_in_flight(self) -> list[Route]:
        """Local trainings whose last state is not final (their state may have moved)."""
        return self._routes_where(
            RoutedTrainingRow.routed_to == "local", RoutedTrainingRow.status.not_in(FINAL_STATUSES)
        )

    def _routes_where(self, *conditions: ColumnElement[bool]) -> list[Route]:
        with Session(self._engine) as session:
            rows = session.scalars(select(RoutedTrainingRow).where(*conditions)).all()
            return [_to_route(row) for row in rows]

    def confirmed_host_ids(self, unchanged_since: datetime) -> set[str]:
        """Ids of confirmed host trainings whose row has not changed since ``unchanged_since``."""
        with Session(self._engine) as session:
            ids = session.scalars(
                select(RoutedTrainingRow.training_id).where(
                    RoutedTrainingRow.routed_to == "host_service",
                    RoutedTrainingRow.confirmed.is_(True),
                    RoutedTrainingRow.updated_at < unchanged_since,
                )
            ).all()
            return set(ids)

    def mirror_host_states(self, states: Sequence[dict[str, Any]]) -> int:
        """Keep the host's states of its trainings: new ids as ``origin="host"``; returns how
        many rows changed.

        A training routed here locally keeps its row: a host training of the same id is
        not this one.
        """
        changed = 0
        for state in states:
            training_id = str(state.get("training_id", ""))
            known = self.get(training_id)
            if known is None:
                changed += self._insert_foreign(training_id, state)
            elif known.routed_to == "host_service" and (
                not known.confirmed or known.last_state != state
            ):
                self.update(training_id, confirmed=True, last_state=state)
                changed += 1
        return changed

    def _insert_foreign(self, training_id: str, state: dict[str, Any]) -> int:
        created = _instant(state.get("created_at")) or utcnow()
        route = Route(
            training_id=training_id,
            routed_to="host_service",
            fallback_reason=None,
            confirmed=True,
            last_state=state,
            stop_pending=False,
            created_at=created,
            origin="host",
        )
        try:
            with Session(self._engine) as session, session.begin():
                session.add(_to_row(route))
        except IntegrityError:
            return 0  # claimed by a start meanwhile: the next round updates it
        with self._lock:
            self._cache[training_id] = route
        return 1

    def claim(
        self,
        training_id: str,
        routed_to: RoutedTo,
        *,
        fallback_reason: FallbackReason | None,
        last_state: dict[str, Any],
    ) -> Route | None:
        """Insert an unconfirmed route unless the id has one; None when another start has it.

        The database's primary key decides, so two starts of one id, in this process or
        another, never both go ahead.
        """
        route = Route(
            training_id=training_id,
            routed_to=routed_to,
            fallback_reason=fallback_reason,
            confirmed=False,
            last_state=last_state,
            stop_pending=False,
            created_at=utcnow(),
        )
        try:
            with Session(self._engine) as session, session.begin():
                session.add(_to_row(route))
        except IntegrityError:
            return None
        with self._lock:
            self._cache[route.training_id] = route
        return route

    def _write(self, route: Route) -> None:
        # Dated as its state is (where it runs created it a moment after the id was claimed
        # here): the list's created_at filters read what its items show.
        created = _instant(route.last_state.get("created_at"))
        if created is not None and created != route.created_at:
            route = replace(route, created_at=created)
        with Session(self._engine) as session, session.begin():
            session.merge(_to_row(route))
        with self._lock:
            self._cache[route.training_id] = route


def _conditions(wanted: RouteFilter) -> list[ColumnElement[bool]]:
    row = RoutedTrainingRow
    conditions: list[ColumnElement[bool]] = []
    if wanted.status == "host_unreachable":
        conditions.append(row.routed_to == "host_service" if wanted.host_unreachable else false())
        conditions.append(row.status != "unknown")
    elif wanted.status is not None:
        conditions.append(row.status == wanted.status)
        if wanted.host_unreachable:
            conditions.append(row.routed_to == "local")
    if wanted.strategy is not None:
        conditions.append(row.strategy == wanted.strategy)
    for column, member in ((row.symbols, wanted.symbol), (row.timeframes, wanted.timeframe)):
        if member is not None:
            conditions.append(column.contains(f",{member},", autoescape=True))
    if wanted.tag is not None:
        conditions.append(row.tags.contains(f",{wanted.tag},", autoescape=True))
    if wanted.created_after is not None:
        conditions.append(row.created_at >= wanted.created_after)
    if wanted.created_before is not None:
        conditions.append(row.created_at < wanted.created_before)
    return conditions or [true()]


def _members(values: Iterable[Any] | None) -> str | None:
    """``",a,b,"``: a LIKE on ``",a,"`` finds a member, never a part of one."""
    if not values or isinstance(values, str):
        return None
    return "," + ",".join(str(value) for value in values) + ","


def _parse_members(text: str | None) -> tuple[str, ...]:
    return tuple(part for part in (text or "").split(",") if part)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _to_row(route: Route) -> RoutedTrainingRow:
    state = route.last_state
    strategy = state.get("strategy")
    return RoutedTrainingRow(
        training_id=route.training_id,
        routed_to=route.routed_to,
        fallback_reason=route.fallback_reason,
        confirmed=route.confirmed,
        status=route.status,
        last_state=state,
        stop_pending=route.stop_pending,
        created_at=route.created_at,
        updated_at=utcnow(),
        origin=route.origin,
        strategy=strategy if isinstance(strategy, str) else None,
        symbols=_members(state.get("symbols")),
        timeframes=_members(state.get("timeframes")),
        tags=_members(route.tags),
    )


def _to_route(row: RoutedTrainingRow) -> Route:
    return Route(
        training_id=row.training_id,
        routed_to="local" if row.routed_to == "local" else "host_service",
        # Written only from FallbackReason values (add, claim).
        fallback_reason=cast(FallbackReason | None, row.fallback_reason),
        confirmed=row.confirmed,
        last_state=dict(row.last_state or {}),
        stop_pending=row.stop_pending,
        created_at=row.created_at,
        origin="host" if row.origin == "host" else "backend",
        local_tags=_parse_members(row.tags),
    )
