"""Sessions in the shapes KTRDR's clients read (field by field in docs/ktrdr.md).

- era A: ``/training/status/{id}`` (``HostSessionManager``, ``TrainingProgressBridge``,
  ``result_aggregator.from_host_run``, ``TrainingHostClient``)
- era B: ``/training/result/{id}`` and the operation KTRDR's ``OperationServiceProxy`` pulls
- era C: the same operation, wrapped as ``{success, data}``, plus epoch metrics by cursor

Every function is pure: a view, its history and the export summary in, JSON out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from training_sessions.contract import path_in_answer
from training_sessions.types import RuntimeSettings, SessionPerformance, SessionView

# Our words -> era A's (its pollers stop on completed / failed / stopped).
ERA_A_STATUS = {"cancelled": "stopped"}
# Our words -> KTRDR's OperationStatus (anything else breaks its refresh).
OPERATION_STATUS = {
    "queued": "pending",
    "running": "running",
    "interrupted": "pending",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
GPU_DEVICE_TYPES = ("cuda", "mps")


def era_a_status_word(status: str) -> str:
    return ERA_A_STATUS.get(status, status)


def as_utc(moment: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def uses_gpu(view: SessionView) -> bool:
    return bool(view.device and view.device.startswith(GPU_DEVICE_TYPES))


def batch_counts(view: SessionView) -> tuple[int, int]:
    """(batches done in the whole run, batches in the whole run)."""
    p = view.progress
    total = p.total_batches * p.total_epochs
    if view.status == "completed":
        return total, total
    done = max(0, p.epoch - 1) * p.total_batches + p.batch
    return min(done, total) if total else done, total


def progress_message(view: SessionView) -> str:
    p = view.progress
    if view.status == "queued":
        return "Queued, waiting for a free worker"
    if p.epoch == 0:
        return f"Preparing data ({view.status})"
    return f"Epoch {p.epoch}/{p.total_epochs} · Batch {p.batch}/{p.total_batches}"


def current_item(view: SessionView) -> str:
    request = view.request
    symbols = ",".join(request.get("symbols") or []) or "strategy symbols"
    timeframes = ",".join(request.get("timeframes") or []) or "strategy timeframes"
    return f"{symbols} {timeframes}"


def era_a_progress(view: SessionView) -> dict[str, Any]:
    p = view.progress
    done, total = batch_counts(view)
    return {
        "epoch": p.epoch,
        "total_epochs": p.total_epochs,
        "batch": p.batch,
        "total_batches": p.total_batches,
        "items_processed": done,
        "items_total": total,
        "progress_percent": p.percent,
        "message": progress_message(view),
        "current_item": current_item(view),
        "eta_seconds": p.eta_seconds,
    }


def current_metrics(view: SessionView) -> dict[str, float]:
    """Live metrics; ``loss`` is the last training loss, ``accuracy`` the validation one."""
    metrics = {k: float(v) for k, v in view.metrics.items() if v is not None}
    if "train_loss" in metrics:
        metrics["loss"] = metrics["train_loss"]
    if "val_accuracy" in metrics:
        metrics["accuracy"] = metrics["val_accuracy"]
    return metrics


def best_metrics(history: list[dict[str, float | int]]) -> dict[str, float | int]:
    rated = [row for row in history if "val_accuracy" in row]
    if not rated:
        return {}
    best = max(rated, key=lambda row: row["val_accuracy"])
    return {
        "epoch": int(best["epoch"]),
        "val_accuracy": float(best["val_accuracy"]),
        "val_loss": float(best.get("val_loss", 0.0)),
        "accuracy": float(best["val_accuracy"]),
    }


def resource_usage(view: SessionView, gpu: dict[str, Any] | None) -> dict[str, Any]:
    devices = (gpu or {}).get("devices") or [{}]
    device = devices[0] if uses_gpu(view) else {}
    return {
        "gpu_used": uses_gpu(view),
        "device": view.device,
        "gpu_name": device.get("name"),
        "gpu_utilization_percent": device.get("utilization_percent"),
        # The worker process's peak is not measured; KTRDR only displays it.
        "peak_memory_mb": None,
        "training_mode": "host",
    }


def _training_minutes(view: SessionView, summary: dict[str, Any] | None) -> float:
    if summary is not None:
        return float(summary["training_metrics"]["training_time"]) / 60.0
    if view.started_at is not None and view.finished_at is not None:
        return (view.finished_at - view.started_at).total_seconds() / 60.0
    return 0.0


def final_metrics(view: SessionView, summary: dict[str, Any] | None) -> dict[str, Any]:
    """``metrics.training/validation/test`` as era A's result aggregator reads them."""
    if summary is None:
        return {}
    training = summary["training_metrics"]
    return {
        "training": {
            "final_train_loss": training["final_train_loss"],
            "final_train_accuracy": training["final_train_accuracy"],
            "epochs_completed": training["epochs_trained"],
            "early_stopped": training["early_stopped"],
            "training_time_minutes": _training_minutes(view, summary),
            "best_epoch": training["best_epoch"],
            "final_learning_rate": training["final_learning_rate"],
        },
        "validation": {
            "val_loss": training["final_val_loss"],
            "val_accuracy": training["final_val_accuracy"],
            "best_val_accuracy": training["best_val_accuracy"],
        },
        "test": dict(summary["test_metrics"]),
    }


def artifacts(
    view: SessionView, summary: dict[str, Any] | None, folders: RuntimeSettings
) -> dict[str, Any]:
    """``model_path`` is KTRDR's model folder when exported, else our artifact.

    It is the one absolute path: KTRDR opens it (``ModelStorage``). Our artifact and the
    checkpoint are given relative to ``models_dir`` and ``checkpoints_dir``.
    """
    ktrdr_path = summary.get("ktrdr_model_path") if summary else None
    checkpoint = path_in_answer(view.checkpoint_path, folders.checkpoints_dir)
    return {
        "model_path": ktrdr_path or view.model_path,
        "host_model_path": path_in_answer(view.model_path, folders.models_dir),
        "analytics_dir": None,
        "checkpoints": [checkpoint] if checkpoint else [],
        "download_url": None,
        "feature_importance": {},
        "per_symbol_metrics": {},
    }


def era_a_status(
    view: SessionView,
    perf: SessionPerformance,
    summary: dict[str, Any] | None,
    gpu: dict[str, Any] | None,
    folders: RuntimeSettings,
) -> dict[str, Any]:
    """``GET /training/status/{id}``: live progress, and at the end every final figure."""
    metrics: dict[str, Any] = {
        "current": current_metrics(view),
        "best": best_metrics(perf.history),
        **final_metrics(view, summary),
    }
    return {
        "session_id": view.training_id,
        "status": era_a_status_word(view.status),
        "progress": era_a_progress(view),
        "metrics": metrics,
        "artifacts": artifacts(view, summary, folders),
        "model_info": dict(summary["model_info"]) if summary else {},
        "resource_usage": resource_usage(view, gpu),
        "gpu_usage": gpu if uses_gpu(view) else None,
        "device": view.device,
        "start_time": iso(view.started_at or view.created_at),
        "last_updated": iso(view.finished_at or view.started_at or view.created_at),
        "timestamp": now_iso(),
        "error": view.error,
        "model_path": artifacts(view, summary, folders)["model_path"],
    }


def training_result(
    view: SessionView,
    summary: dict[str, Any] | None,
    gpu: dict[str, Any] | None,
    folders: RuntimeSettings,
) -> dict[str, Any]:
    """``GET /training/result/{id}`` (era B) and an operation's ``result_summary`` (era C)."""
    paths = artifacts(view, summary, folders)
    request = view.request
    return {
        "session_id": view.training_id,
        "status": view.status,
        "start_time": iso(view.started_at or view.created_at),
        "last_updated": iso(view.finished_at),
        "model_path": paths["model_path"],
        "training_metrics": dict(summary["training_metrics"]) if summary else {},
        "test_metrics": dict(summary["test_metrics"]) if summary else {},
        "artifacts": paths,
        "model_info": dict(summary["model_info"]) if summary else {},
        "data_summary": {
            "symbols": request.get("symbols"),
            "timeframes": request.get("timeframes"),
            "start_date": request.get("start_date"),
            "end_date": request.get("end_date"),
        },
        "resource_usage": resource_usage(view, gpu),
    }


def operation(
    view: SessionView,
    operation_id: str,
    summary: dict[str, Any] | None,
    gpu: dict[str, Any] | None,
    folders: RuntimeSettings,
) -> dict[str, Any]:
    """The session as KTRDR's ``OperationInfo`` (what its operations proxy reads)."""
    p = view.progress
    done, total = batch_counts(view)
    request = view.request
    symbols = request.get("symbols") or []
    timeframes = request.get("timeframes") or []
    completed = view.status == "completed"
    return {
        "operation_id": operation_id,
        "parent_operation_id": None,
        "operation_type": "training",
        "status": OPERATION_STATUS.get(view.status, "running"),
        "created_at": iso(view.created_at),
        "started_at": iso(view.started_at),
        "completed_at": iso(view.finished_at),
        "progress": {
            "percentage": min(100.0, max(0.0, p.percent)),
            "current_step": progress_message(view),
            "steps_completed": p.epoch if not completed else p.total_epochs,
            "steps_total": p.total_epochs,
            "items_processed": done,
            "items_total": total,
            "current_item": current_item(view),
            "context": {"session_id": view.training_id, "device": view.device},
        },
        "metadata": {
            "symbol": symbols[0] if symbols else None,
            "timeframe": timeframes[0] if timeframes else None,
            "mode": "training",
            "start_date": request.get("start_date"),
            "end_date": request.get("end_date"),
            "parameters": {"session_id": view.training_id},
        },
        "error_message": view.error,
        "warnings": [],
        "errors": [view.error] if view.error else [],
        "result_summary": training_result(view, summary, gpu, folders) if completed else None,
        "metrics": None,
        "is_backend_local": False,
    }


def epoch_entries(history: list[dict[str, float | int]]) -> list[dict[str, Any]]:
    """Per-epoch rows in KTRDR's training-metrics shape (accuracy is validation accuracy)."""
    return [
        {
            "epoch": int(row["epoch"]),
            "train_loss": row.get("train_loss"),
            "train_accuracy": None,
            "val_loss": row.get("val_loss"),
            "val_accuracy": row.get("val_accuracy"),
            "learning_rate": row.get("learning_rate"),
            "duration": row.get("epoch_seconds"),
            "timestamp": None,
        }
        for row in history
    ]


def session_item(view: SessionView, folders: RuntimeSettings) -> dict[str, Any]:
    """One ``/training/sessions`` entry; ``model_path`` is our artifact, under models_dir."""
    return {
        "session_id": view.training_id,
        "status": era_a_status_word(view.status),
        "start_time": iso(view.started_at or view.created_at),
        "last_updated": iso(view.finished_at or view.started_at or view.created_at),
        "progress": era_a_progress(view),
        "gpu_allocated": uses_gpu(view),
        "device": view.device,
        "error": view.error,
        "model_path": path_in_answer(view.model_path, folders.models_dir),
    }
