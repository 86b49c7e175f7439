"""What each era of KTRDR's client sends to the host service and what it reads back.

Written from the facts in /work/notes/ktrdr_client.md (file:line references there), not
copied from KTRDR. Bodies are example values of the exact shape each client sends; read
lists are ``FieldRead(path, types, meaning)`` with dotted paths into the JSON answer.
``problems_with`` says which reads an answer would fail, for the contract tests.
"""

from __future__ import annotations

from typing import Any, NamedTuple

NUMBER: tuple[type, ...] = (int, float)
OPTIONAL_STR: tuple[type, ...] = (str, type(None))
OPTIONAL_NUMBER: tuple[type, ...] = (int, float, type(None))
OPTIONAL_DICT: tuple[type, ...] = (dict, type(None))


class FieldRead(NamedTuple):
    """One field a KTRDR client reads: where, which JSON types it copes with, and why."""

    path: str
    types: tuple[type, ...]
    meaning: str


def value_at(document: Any, path: str) -> tuple[bool, Any]:
    """``(found, value)`` for a dotted path into nested dicts."""
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def problems_with(document: Any, reads: list[FieldRead]) -> list[str]:
    """Every read that is missing or of a type KTRDR does not expect (bool is not a number)."""
    problems = []
    for read in reads:
        found, value = value_at(document, read.path)
        if not found:
            problems.append(f"{read.path}: missing ({read.meaning})")
        elif isinstance(value, bool) and bool not in read.types:
            problems.append(f"{read.path}: bool where {read.types} expected")
        elif not isinstance(value, read.types):
            problems.append(f"{read.path}: {type(value).__name__} where {read.types} expected")
    return problems


# ---------------------------------------------------------------------------------------
# Era A (2025-07-24 -> 2025-10-11): TrainingAdapter / HostSessionManager / TrainingHostClient
# ---------------------------------------------------------------------------------------

# The strategy's whole model.training section is merged into training_configuration
# (aedd70ea); this one is a typical KTRDR strategy's section.
ERA_A_STRATEGY_TRAINING_SECTION: dict[str, Any] = {
    "method": "supervised",
    "learning_rate": 0.001,
    "batch_size": 32,
    "epochs": 2,
    "optimizer": "adam",
    "early_stopping": {"enabled": True, "patience": 5, "min_delta": 0.001},
}

ERA_A_START_BODY: dict[str, Any] = {
    "model_configuration": {
        "strategy_config": "/app/strategies/momentum_mlp.yaml",
        "symbols": ["AAPL"],
        "timeframes": ["1h"],
        "model_type": "mlp",
        "multi_symbol": False,
    },
    "training_configuration": {
        "validation_split": 0.2,
        "start_date": "2020-01-01",
        "end_date": "2025-10-03",
        "data_mode": "local",
        **ERA_A_STRATEGY_TRAINING_SECTION,
    },
    "data_configuration": {"symbols": ["AAPL"], "timeframes": ["1h"], "data_source": "local"},
    "gpu_configuration": {"enable_gpu": True, "memory_fraction": 0.8, "mixed_precision": True},
}

# 2bdff5e8: the same without the model.training merge.
ERA_A_START_BODY_2BDFF5E8: dict[str, Any] = {
    **ERA_A_START_BODY,
    "training_configuration": {
        "validation_split": 0.2,
        "start_date": "2020-01-01",
        "end_date": "2025-08-30",
        "data_mode": "local",
    },
}

# TrainingHostClient.start_training_session with its defaults (caller passes a path here).
ERA_A_HOST_CLIENT_START_BODY: dict[str, Any] = {
    "model_configuration": {
        **ERA_A_START_BODY["model_configuration"],
        "strategy_config": "strategies/momentum_mlp.yaml",
    },
    "training_configuration": {
        "epochs": 100,
        "validation_split": 0.2,
        "batch_size": 32,
        "learning_rate": 0.001,
        "early_stopping": True,
        "start_date": "2024-01-01",
        "end_date": "2024-06-30",
    },
    "data_configuration": {
        "symbols": ["AAPL"],
        "timeframes": ["1h"],
        "data_source": "local",
        "indicators": [],
        "fuzzy_config": {},
    },
    "gpu_configuration": ERA_A_START_BODY["gpu_configuration"],
}


def era_a_stop_body(session_id: str) -> dict[str, Any]:
    """``POST /training/stop`` as both era A clients send it."""
    return {"session_id": session_id, "save_checkpoint": True}


ERA_A_HEALTH_READS = [FieldRead("healthy", (bool,), "is_available(): 200 and truthy")]
ERA_A_START_READS = [FieldRead("session_id", (str,), "non-empty, else start failed")]
ERA_A_STOP_READS = [FieldRead("status", (str,), "host_status in the progress context")]
ERA_A_SESSIONS_READS = [FieldRead("sessions", (list,), "list_training_sessions()")]

# While running (progress bridge, 2bdff5e8 lazy poll).
ERA_A_STATUS_READS = [
    FieldRead("status", (str,), "lower-cased; terminal sets below"),
    FieldRead("session_id", (str,), "host_session_id"),
    FieldRead("error", OPTIONAL_STR, "failure message"),
    FieldRead("progress.epoch", (int,), "current epoch"),
    FieldRead("progress.total_epochs", (int,), "epochs in the run"),
    FieldRead("progress.items_total", (int,), "batches in the whole run"),
    FieldRead("progress.items_processed", (int,), "batches done so far, whole run"),
    FieldRead("progress.progress_percent", NUMBER, "0-100"),
    FieldRead("progress.message", (str,), "progress message"),
    FieldRead("progress.current_item", (str,), "shown as current item"),
    FieldRead("progress.batch", (int,), "batch within the epoch"),
    FieldRead("progress.total_batches", (int,), "batches per epoch"),
    FieldRead("metrics.current", (dict,), "live metrics"),
    FieldRead("metrics.current.loss", NUMBER, "formatted :.4f (2bdff5e8)"),
    FieldRead("metrics.current.accuracy", NUMBER, "formatted :.3f (2bdff5e8)"),
    FieldRead("metrics.best", (dict,), "best metrics"),
    FieldRead("gpu_usage", OPTIONAL_DICT, "context"),
    FieldRead("resource_usage", (dict,), "context and final result"),
    FieldRead("timestamp", (str,), "ISO time of the snapshot"),
]

# At the end from_host_run reads the last status snapshot; missing -> 0.0 / None stored.
ERA_A_FINAL_STATUS_READS = [
    FieldRead("metrics.training.final_train_loss", NUMBER, "training_metrics"),
    FieldRead("metrics.training.final_train_accuracy", NUMBER, "0-1"),
    FieldRead("metrics.training.epochs_completed", (int,), "epochs run"),
    FieldRead("metrics.training.early_stopped", (bool,), "stopped early"),
    FieldRead("metrics.training.training_time_minutes", NUMBER, "wall time"),
    FieldRead("metrics.training.best_epoch", (int, type(None)), "best epoch"),
    FieldRead("metrics.training.final_learning_rate", OPTIONAL_NUMBER, "last lr"),
    FieldRead("metrics.validation.val_loss", NUMBER, "also final_val_loss"),
    FieldRead("metrics.validation.val_accuracy", NUMBER, "0-1; also final_val_accuracy"),
    FieldRead("metrics.test.test_loss", NUMBER, "test_metrics"),
    FieldRead("metrics.test.test_accuracy", NUMBER, "0-1"),
    FieldRead("metrics.test.precision", NUMBER, "0-1"),
    FieldRead("metrics.test.recall", NUMBER, "0-1"),
    FieldRead("metrics.test.f1_score", NUMBER, "0-1"),
    FieldRead("resource_usage.gpu_used", (bool,), "defaults to True when missing"),
    FieldRead("resource_usage.gpu_name", OPTIONAL_STR, "device name"),
    FieldRead("resource_usage.gpu_utilization_percent", OPTIONAL_NUMBER, "percent"),
    FieldRead("resource_usage.peak_memory_mb", OPTIONAL_NUMBER, "MB"),
    FieldRead("artifacts.model_path", (str,), "a path KTRDR can open"),
    FieldRead("artifacts.analytics_dir", OPTIONAL_STR, "analytics folder"),
    FieldRead("artifacts.checkpoints", (list,), "checkpoint paths"),
    FieldRead("artifacts.download_url", OPTIONAL_STR, "download link"),
    FieldRead("artifacts.feature_importance", OPTIONAL_DICT, "per feature"),
    FieldRead("artifacts.per_symbol_metrics", OPTIONAL_DICT, "per symbol"),
    FieldRead("model_info", (dict,), "stored as model_info"),
]

ERA_A_SUCCESS = {"completed"}
ERA_A_FAILURE = {"failed"}
ERA_A_CANCELLED = {"stopped", "cancelled"}  # HostSessionManager
ERA_A_HOST_CLIENT_TERMINAL = {"completed", "failed", "stopped"}  # wait_for_completion

# ---------------------------------------------------------------------------------------
# Era B (2025-10-12 -> 2025-11-09): inline YAML, /training/result, operations proxy
# ---------------------------------------------------------------------------------------


def era_b_start_body(strategy_yaml: str) -> dict[str, Any]:
    """``POST /training/start`` from 4d43ca11 to 49568a5f: the strategy file's text inline."""
    return {
        "strategy_yaml": strategy_yaml,
        "symbols": ["AAPL"],
        "timeframes": ["1h"],
        "start_date": "2020-01-01",
        "end_date": "2025-10-26",
    }


def era_b_host_operation_id(session_id: str) -> str:
    """The id KTRDR asks ``/api/v1/operations/{id}`` for, from e5a68c86 on."""
    return f"host_training_{session_id}"


ERA_B_START_READS = ERA_A_START_READS

# GET /training/result/{id} (4d43ca11): the JSON becomes the operation's result as is.
ERA_B_RESULT_READS = [
    FieldRead("model_path", (str,), "model folder"),
    FieldRead("training_metrics", (dict,), "trainer summary"),
    FieldRead("training_metrics.epochs_trained", (int,), "epochs run"),
    FieldRead("training_metrics.final_train_loss", NUMBER, "last train loss"),
    FieldRead("training_metrics.final_train_accuracy", NUMBER, "0-1"),
    FieldRead("training_metrics.final_val_loss", NUMBER, "last val loss"),
    FieldRead("training_metrics.final_val_accuracy", NUMBER, "0-1"),
    FieldRead("training_metrics.best_val_accuracy", NUMBER, "0-1"),
    FieldRead("test_metrics", (dict,), "held-out metrics"),
    FieldRead("test_metrics.test_accuracy", NUMBER, "0-1"),
    FieldRead("test_metrics.test_loss", NUMBER, "loss"),
    FieldRead("artifacts", (dict,), "feature_importance, per_symbol_metrics"),
    FieldRead("model_info", (dict,), "parameters_count, architecture"),
    FieldRead("data_summary", (dict,), "symbols, timeframes, dates, samples"),
    FieldRead("session_id", (str,), "echo"),
    FieldRead("status", (str,), "'completed'"),
]

# GET /api/v1/operations/{id} after taking "data" (49568a5f and HEAD).
OPERATION_STATUSES = {"pending", "running", "completed", "failed", "cancelled"}
ERA_B_OPERATION_READS = [
    FieldRead("status", (str,), "one of OPERATION_STATUSES, else the refresh fails"),
    FieldRead("progress.percentage", NUMBER, "0-100, else the refresh fails"),
    FieldRead("progress.current_step", OPTIONAL_STR, "step text"),
    FieldRead("progress.steps_completed", (int,), ">= 0"),
    FieldRead("progress.steps_total", (int,), ">= 0"),
    FieldRead("progress.items_processed", (int,), ">= 0"),
    FieldRead("progress.items_total", (int, type(None)), ">= 0 or null"),
    FieldRead("progress.current_item", OPTIONAL_STR, "current item"),
]
# GET /api/v1/operations/{id}/metrics?cursor=N after taking "data".
ERA_B_METRICS_READS = [
    FieldRead("metrics", (list,), "new epoch entries since the cursor"),
    FieldRead("new_cursor", (int,), "next cursor; without it entries repeat"),
]

# ---------------------------------------------------------------------------------------
# Era C (2025-11-10 -> HEAD): registered workers
# ---------------------------------------------------------------------------------------


def era_c_registration_body(
    worker_id: str, endpoint_url: str, *, gpu: bool = False, current_operation_id: str | None = None
) -> dict[str, Any]:
    """``POST {backend}/api/v1/workers/register`` as a KTRDR training worker sends it (C2)."""
    capabilities: dict[str, Any] = {"gpu": gpu}
    if gpu:
        capabilities.update({"gpu_type": "CUDA", "gpu_count": 1})
    return {
        "worker_id": worker_id,
        "worker_type": "training",
        "endpoint_url": endpoint_url,
        "capabilities": capabilities,
        "current_operation_id": current_operation_id,
        "completed_operations": [],
    }


def era_c_completed_report(operation_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """One ``completed_operations`` entry for a training that ended while the backend was away."""
    return {
        "operation_id": operation_id,
        "status": "COMPLETED",
        "result": result,
        "error_message": None,
        "completed_at": "2025-12-31T12:00:00+00:00",
    }


def era_c_start_body(task_id: str, strategy_yaml: str) -> dict[str, Any]:
    """``POST {worker}/training/start`` as KTRDR's backend sends it (C1 has no strategy_path)."""
    return {
        "task_id": task_id,
        "strategy_yaml": strategy_yaml,
        "strategy_path": "strategies/momentum_mlp.yaml",
        "symbols": ["AAPL"],
        "timeframes": ["1h"],
        "start_date": "2024-01-01",
        "end_date": "2024-06-30",
    }


ERA_C_HEALTH_READS = [
    FieldRead("worker_status", (str,), "'busy' -> busy, anything else -> available"),
    FieldRead("current_operation", OPTIONAL_STR, "operation while busy"),
    FieldRead("healthy", (bool,), "KTRDR's workers send it; era A reads it"),
]
ERA_C_START_READS = [FieldRead("operation_id", (str,), "required; = task_id")]
ERA_C_OPERATION_READS = [
    *ERA_B_OPERATION_READS,
    FieldRead("result_summary", OPTIONAL_DICT, "stored once completed"),
    FieldRead("completed_at", OPTIONAL_STR, "ISO 8601, Z allowed"),
    FieldRead("error_message", OPTIONAL_STR, "failure text"),
]
ERA_C_OPERATION_STATUSES = OPERATION_STATUSES | {"resuming"}
ERA_C_RESULT_SUMMARY_READS = [
    FieldRead("model_path", (str,), "CLI and evolution harness"),
    FieldRead("artifacts.model_path", (str,), "save_trained_model"),
    FieldRead("training_metrics", (dict,), "CLI summary"),
    FieldRead("test_metrics.test_accuracy", NUMBER, "agent gates"),
    FieldRead("test_metrics.test_loss", NUMBER, "agent gates"),
    FieldRead("model_info", (dict,), "get_model_performance"),
]
