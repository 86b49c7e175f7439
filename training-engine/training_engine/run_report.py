"""The lines a person reads about a finished run's evaluation (the CLI prints them).

They are built from ``TrainingResult.evaluation``, the same JSON-safe mapping the model's
metadata and ``/performance`` carry, so the three never say different things.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training_engine.data_report import data_report_lines
from training_engine.verdict import class_balance_lines, verdict_lines
from training_engine.walk_forward import fold_lines


def split_lines(splits: Mapping[str, Any]) -> list[str]:
    """Each symbol's part with its samples and first and last bar."""
    lines = [f"split ({splits['mode']}):"]
    for part in splits["parts"]:
        span = f"{part['first_bar']} .. {part['last_bar']}" if part["samples"] else "no samples"
        lines.append(f"  {part['symbol']:<8} {part['part']:<10} {part['samples']:>7}  {span}")
    return lines


def evaluation_lines(evaluation: Mapping[str, Any]) -> list[str]:
    """Every section present in ``evaluation``, in reading order."""
    lines: list[str] = []
    if evaluation.get("data_report"):
        lines += data_report_lines(evaluation["data_report"])
    if evaluation.get("splits"):
        lines += split_lines(evaluation["splits"])
    if "class_shares" in evaluation:
        lines += class_balance_lines(evaluation["class_shares"])
    if "loss" in evaluation:
        loss = evaluation["loss"]
        lines.append(
            f"loss: class weights {loss['class_weights']}"
            + (f" {loss['weights']}" if loss.get("weights") else "")
            + (", labeller's sample weights" if loss.get("sample_weights") else "")
        )
    if evaluation.get("weights"):
        weights = evaluation["weights"]
        if weights.get("epoch"):
            lines.append(
                f"weights: epoch {weights['epoch']}, {weights['chosen_by']} "
                f"({weights['val_loss']:.4f})"
            )
    if evaluation.get("method") == "walk_forward":
        lines += fold_lines(evaluation)
    if "verdict" in evaluation:
        lines += verdict_lines(evaluation["verdict"])
    return lines
