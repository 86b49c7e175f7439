"""Routes for the client KTRDR backends already use (``/training/...``).

Legacy bodies carry more keys than this service reads, so extra keys are
allowed; the values that are used are checked strictly. The mapping onto
``TrainingRequest`` is documented in docs/host-service.md.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from training_engine.device import describe_devices
from training_sessions.contract import TrainingId
from training_sessions.http.errors import error_responses
from training_sessions.types import SessionView, TrainingRequest

from training_host.api.deps import AUTH, ManagerDep, SettingsDep, TrainingIdPath
from training_host.errors import UnsafePathError

router = APIRouter(
    prefix="/training",
    tags=["ktrdr-compatible"],
    dependencies=AUTH,
    responses=error_responses(401),
)

# training_configuration keys that are model.training overrides in the engine.
TRAINING_OVERRIDE_KEYS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "weight_decay",
    "scheduler",
    "seed",
    "device",
    "mixed_precision",
    "early_stopping",
    "gradient_clip",
)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class KtrdrModelConfiguration(_Lenient):
    strategy_config: str = Field(min_length=1, description="strategy path or file name")
    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
    model_type: str | None = None
    multi_symbol: bool | None = None


class KtrdrTrainingConfiguration(_Lenient):
    validation_split: float | None = Field(default=None, gt=0.0, lt=1.0)
    start_date: str | None = None
    end_date: str | None = None
    data_mode: str | None = None


class KtrdrGpuConfiguration(_Lenient):
    enable_gpu: bool = True
    mixed_precision: bool | None = None


class KtrdrStartBody(_Lenient):
    session_id: TrainingId | None = None
    model_configuration: KtrdrModelConfiguration
    training_configuration: KtrdrTrainingConfiguration = Field(
        default_factory=KtrdrTrainingConfiguration
    )
    data_configuration: dict[str, Any] = Field(default_factory=dict)
    gpu_configuration: KtrdrGpuConfiguration | None = None


class KtrdrStopBody(_Lenient):
    session_id: str = Field(min_length=1)
    save_checkpoint: bool = True


def strategy_name_from(strategy_config: str, strategies_dir: FilePath) -> str:
    """The strategy file name a KTRDR ``strategy_config`` points at.

    KTRDR backends send paths from their own tree (``strategies/x.yaml``): a relative
    path counts by its file name alone, looked up in ``strategies_dir``. An absolute
    path must be a file directly inside ``strategies_dir``; ``..`` is refused outright.
    """
    candidate = FilePath(strategy_config)
    if ".." in candidate.parts:
        raise UnsafePathError(f"strategy_config '{strategy_config}' must not contain '..'")
    if candidate.is_absolute():
        root = strategies_dir.resolve()
        if candidate.resolve().parent != root:
            raise UnsafePathError(
                f"strategy_config '{strategy_config}' must name a file directly inside the "
                f"strategies directory {root}"
            )
    if candidate.suffix.lower() in {".yaml", ".yml"}:
        return candidate.stem
    return candidate.name


def request_from(body: KtrdrStartBody, strategies_dir: FilePath) -> TrainingRequest:
    """Map a KTRDR start body onto the engine's request."""
    model = body.model_configuration
    training = body.training_configuration
    extra = training.model_extra or {}
    config: dict[str, Any] = {key: extra[key] for key in TRAINING_OVERRIDE_KEYS if key in extra}
    gpu = body.gpu_configuration
    if gpu is not None:
        if not gpu.enable_gpu:
            config["device"] = "cpu"
        if gpu.mixed_precision is not None:
            config.setdefault("mixed_precision", "auto" if gpu.mixed_precision else "off")
    return TrainingRequest(
        strategy=strategy_name_from(model.strategy_config, strategies_dir),
        symbols=tuple(model.symbols),
        timeframes=tuple(model.timeframes),
        start_date=training.start_date,
        end_date=training.end_date,
        config=config,
    )


def _progress(view: SessionView) -> dict[str, Any]:
    p = view.progress
    return {
        "epoch": p.epoch,
        "total_epochs": p.total_epochs,
        "batch": p.batch,
        "total_batches": p.total_batches,
        "progress_percent": p.percent,
        "eta_seconds": p.eta_seconds,
    }


def _last_updated(view: SessionView) -> str:
    return (view.finished_at or view.started_at or view.created_at).isoformat()


@router.post(
    "/start", status_code=status.HTTP_200_OK, responses=error_responses(409, 413, 422, 429, 503)
)
def start_ktrdr_training(
    body: KtrdrStartBody, manager: ManagerDep, settings: SettingsDep
) -> dict[str, Any]:
    """Start a training from a KTRDR-style body."""
    request = request_from(body, settings.strategies_dir)
    view, created = manager.submit(request, body.session_id)
    wants_gpu = body.gpu_configuration is None or body.gpu_configuration.enable_gpu
    return {
        "session_id": view.training_id,
        "status": view.status,
        "message": "training started" if created else "training already exists",
        "gpu_allocated": bool(wants_gpu and describe_devices()),
    }


@router.post("/stop", responses=error_responses(404, 413, 422))
def stop_ktrdr_training(body: KtrdrStopBody, manager: ManagerDep) -> dict[str, Any]:
    """Stop a training; the engine always checkpoints when it is cancelled."""
    view = manager.stop(body.session_id)
    return {
        "session_id": view.training_id,
        "status": view.status,
        "message": f"training {view.status}",
        "checkpoint_saved": view.checkpoint_path is not None,
    }


@router.get("/status/{session_id}", responses=error_responses(404, 422))
def read_ktrdr_status(session_id: TrainingIdPath, manager: ManagerDep) -> dict[str, Any]:
    """Status in the shape the KTRDR client reads."""
    view = manager.get(session_id)
    return {
        "session_id": view.training_id,
        "status": view.status,
        "progress": _progress(view),
        "metrics": dict(view.metrics),
        "device": view.device,
        "start_time": (view.started_at or view.created_at).isoformat(),
        "last_updated": _last_updated(view),
        "error": view.error,
        "model_path": view.model_path,
    }


@router.get("/sessions")
def list_ktrdr_sessions(manager: ManagerDep) -> dict[str, Any]:
    """Every session, newest first."""
    views, total = manager.list(limit=500)
    sessions = [
        {
            "session_id": v.training_id,
            "status": v.status,
            "start_time": (v.started_at or v.created_at).isoformat(),
            "last_updated": _last_updated(v),
            "progress": _progress(v),
        }
        for v in views
    ]
    return {"total_sessions": total, "sessions": sessions}


@router.delete("/sessions/{session_id}", responses=error_responses(404, 409, 413, 422))
def delete_ktrdr_session(session_id: TrainingIdPath, manager: ManagerDep) -> dict[str, Any]:
    """Forget a finished session (409 while it is queued or running)."""
    manager.delete(session_id)
    return {"session_id": session_id, "message": "session deleted"}
