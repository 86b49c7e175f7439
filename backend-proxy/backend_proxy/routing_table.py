"""Where each training runs and the last state the proxy saw of it.

One table, ``proxy_routed_trainings``, in the backend's database (SQLite by
default, PostgreSQL through ``BACKEND_DATABASE_URL``); it may share that
database with the local session runtime. Its schema comes from the Alembic
migrations in ``migrations/`` (version table ``backend_proxy_alembic_version``),
applied when a :class:`RoutingTable` opens; a table made by ``create_all``
before them is adopted. Rows are written before the host is
called, so a backend that dies mid-start still knows where to look. Reads are
served from an in-memory copy: this process is the table's only writer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import JSON, Boolean, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from training_sessions import schema_migrations
from training_sessions.store import UTCDateTime, create_db_engine, utcnow

RoutedTo = Literal["host_service", "local"]
# Why a training runs locally.
FallbackReason = Literal[
    "disabled", "breaker_open", "host_unreachable", "host_error", "host_at_capacity"
]
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "backend_proxy_alembic_version"
# The revision that creates the table create_all used to make.
FIRST_REVISION = "0001"


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

    @property
    def status(self) -> str:
        return str(self.last_state.get("status", "unknown"))


class RoutingTable:
    """Sync and thread-safe; async callers run writes in a worker thread."""

    def __init__(self, database_url: str) -> None:
        self._engine = create_db_engine(database_url)
        schema_migrations.upgrade(
            self._engine,
            MIGRATIONS_DIR,
            VERSION_TABLE,
            adopt=(Base.metadata.tables[RoutedTrainingRow.__tablename__], FIRST_REVISION),
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
        with Session(self._engine) as session:
            rows = session.scalars(
                select(RoutedTrainingRow).where(
                    RoutedTrainingRow.routed_to == "host_service",
                    RoutedTrainingRow.confirmed.is_(False),
                )
            ).all()
            return [_to_route(row) for row in rows]

    def pending_stops(self) -> list[Route]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(RoutedTrainingRow).where(RoutedTrainingRow.stop_pending.is_(True))
            ).all()
            return [_to_route(row) for row in rows]

    def list_routes(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Route], int]:
        """Routes newest first, filtered by last seen status, and the total that matched."""
        query = select(RoutedTrainingRow)
        count = select(func.count()).select_from(RoutedTrainingRow)
        if status is not None:
            query = query.where(RoutedTrainingRow.status == status)
            count = count.where(RoutedTrainingRow.status == status)
        query = query.order_by(RoutedTrainingRow.created_at.desc()).limit(limit).offset(offset)
        with Session(self._engine) as session:
            rows = session.scalars(query).all()
            total = session.scalar(count) or 0
            return [_to_route(row) for row in rows], int(total)

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
        with Session(self._engine) as session, session.begin():
            session.merge(_to_row(route))
        with self._lock:
            self._cache[route.training_id] = route


def _to_row(route: Route) -> RoutedTrainingRow:
    return RoutedTrainingRow(
        training_id=route.training_id,
        routed_to=route.routed_to,
        fallback_reason=route.fallback_reason,
        confirmed=route.confirmed,
        status=route.status,
        last_state=route.last_state,
        stop_pending=route.stop_pending,
        created_at=route.created_at,
        updated_at=utcnow(),
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
    )
