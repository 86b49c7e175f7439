"""Beginning an attempt: a claimed session moves from queued to running, with its launch."""

from __future__ import annotations

import logging

from training_engine.errors import EngineError

from training_sessions.errors import InvalidTransitionError, SessionError
from training_sessions.requests import build_job, resolve_request, session_log_path
from training_sessions.runners import Launch, StopReason
from training_sessions.session_job import JOB_FORMAT, SessionJob, load_stored_job
from training_sessions.status_writer import StatusWriter
from training_sessions.store import SessionRow, SessionStore, utcnow
from training_sessions.types import RuntimeSettings, SessionStatus, TrainingRequest

logger = logging.getLogger(__name__)

QUEUED = SessionStatus.QUEUED


def begin_attempt(
    settings: RuntimeSettings,
    store: SessionStore,
    statuses: StatusWriter,
    training_id: str,
    stop: StopReason | None,
) -> Launch | None:
    """Move a session taken off the queue to running and say what to launch.

    A session stopped while it was being taken is cancelled (``stop``) or interrupted
    (``shutdown``) instead; one whose stored job cannot be read fails. The attempt is one
    more than the session's launches so far.

    Returns:
        The launch, or None when there is nothing to run.

    Raises:
        SQLAlchemyError: the database is unavailable (nothing was changed).
    """
    row = store.get(training_id)
    if row is None or row.status != QUEUED:
        return None  # stopped or deleted meanwhile, or taken by another process
    try:
        if stop == "stop":
            statuses.move(training_id, QUEUED, SessionStatus.CANCELLED, finished_at=utcnow())
            return None
        if stop == "shutdown":
            statuses.move(training_id, QUEUED, SessionStatus.INTERRUPTED)
            return None
        try:
            job = _stored_job(settings, store, row)
            # Its checkpoint and log are resolved inside their folders before it may run.
            engine_job = build_job(settings, training_id, job, resume=row.started_at is not None)
            log_path = (
                None
                if settings.log_dir is None
                else session_log_path(settings.log_dir, training_id)
            )
        except (EngineError, SessionError, ValueError, KeyError) as exc:  # pydantic's too
            statuses.move(
                training_id,
                QUEUED,
                SessionStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}",
                finished_at=utcnow(),
            )
            return None
        attempt = (row.attempt or 0) + 1
        statuses.move(
            training_id,
            QUEUED,
            SessionStatus.RUNNING,
            started_at=row.started_at or utcnow(),
            device=job.device,
            error=None,
            phase="starting",
            attempt=attempt,
        )
    except InvalidTransitionError:
        logger.info("training %s changed while it was being launched; left as it is", training_id)
        return None
    # A session that ran before continues from its checkpoint (build_job's resume).
    return Launch(training_id=training_id, attempt=attempt, job=engine_job, log_path=log_path)


def _stored_job(settings: RuntimeSettings, store: SessionStore, row: SessionRow) -> SessionJob:
    """The job stored at submit, deserialised as it is.

    Rows older than migration 0002 (no job) resolve it from their request, and jobs of
    format 1 (no config) are parsed from their document: once, stored back at once.
    """
    if row.job is not None and row.job.get("format") == JOB_FORMAT:
        return load_stored_job(row.job)
    if row.job is None:
        job = resolve_request(settings, TrainingRequest.from_dict(row.request))
    else:
        job = load_stored_job(row.job)
    store.update(row.id, job=job.model_dump(mode="json"))
    return job
