"""Optimizers, learning-rate schedules and early stopping, built from ``TrainingSettings``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from training_engine.errors import StrategyConfigError
from training_engine.strategy import TrainingSettings
from training_engine.strategy.names import OPTIMIZERS, SCHEDULERS


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon for 2-D weight matrices and AdamW for everything else, stepped together.

    ``torch.optim.Muon`` only accepts matrices; biases, norms and embeddings go to
    AdamW. The two share this object's ``param_groups``, so LR schedulers see both.
    """

    def __init__(self, params: Iterable[nn.Parameter], settings: TrainingSettings) -> None:
        params = [p for p in params if p.requires_grad]
        matrices = [p for p in params if p.ndim == 2]
        others = [p for p in params if p.ndim != 2]
        lr, decay = settings.learning_rate, settings.weight_decay
        self._parts: list[torch.optim.Optimizer] = []
        if matrices:
            self._parts.append(torch.optim.Muon(matrices, lr=lr, weight_decay=decay))
        if others:
            self._parts.append(torch.optim.AdamW(others, lr=lr, weight_decay=decay))
        super().__init__(params, {"lr": lr})
        # Share the parts' groups and state so schedulers and zero_grad reach them.
        self.param_groups = [g for part in self._parts for g in part.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        for part in self._parts:
            part.step()

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [part.state_dict() for part in self._parts]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for part, state in zip(self._parts, state_dict["parts"], strict=True):
            part.load_state_dict(state)
        self.param_groups = [g for part in self._parts for g in part.param_groups]


def build_optimizer(
    settings: TrainingSettings, params: Iterable[nn.Parameter]
) -> torch.optim.Optimizer:
    """The optimizer named by ``settings.optimizer`` (adam, adamw, sgd, muon).

    Raises:
        StrategyConfigError: unknown name, or muon on a torch without ``torch.optim.Muon``.
    """
    lr, decay = settings.learning_rate, settings.weight_decay
    name = settings.optimizer
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=settings.momentum, weight_decay=decay)
    if name == "muon":
        if not hasattr(torch.optim, "Muon"):
            raise StrategyConfigError(
                "model.training.optimizer",
                f"muon needs torch.optim.Muon, which torch {torch.__version__} does not have",
            )
        return MuonWithAdamW(params, settings)
    raise StrategyConfigError(
        "model.training.optimizer", f"expected one of {', '.join(OPTIMIZERS)}, got {name!r}"
    )


class LRSchedule:
    """A learning-rate schedule and when it steps: per optimizer step or per epoch.

    ``none`` keeps the rate; ``cosine`` anneals over the epochs; ``onecycle`` ramps up
    and down over every optimizer step of the run; ``plateau`` halves the rate when
    the validation loss stops improving.
    """

    def __init__(
        self,
        name: str,
        optimizer: torch.optim.Optimizer,
        scheduler: Any | None,
    ) -> None:
        self.name = name
        self.optimizer = optimizer
        self.scheduler = scheduler

    def after_optimizer_step(self) -> None:
        if self.scheduler is not None and self.name == "onecycle":
            self.scheduler.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.scheduler is None:
            return
        if self.name in ("cosine", "step", "exponential"):
            self.scheduler.step()
        elif self.name in ("plateau", "reduce_on_plateau"):
            self.scheduler.step(val_loss)

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else dict(self.scheduler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def build_scheduler(
    settings: TrainingSettings, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> LRSchedule:
    """The schedule named by ``settings.scheduler`` (none, cosine, onecycle, plateau, and
    KTRDR's step, exponential and reduce_on_plateau with its defaults).

    Args:
        settings: the run's training settings (scheduler, epochs, learning rate, patience).
        optimizer: the optimizer whose rate is scheduled.
        steps_per_epoch: optimizer steps per epoch (batches / accumulation, rounded up).
    """
    name = settings.scheduler
    scheduler: Any | None
    if name == "none":
        scheduler = None
    elif name == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    elif name == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=settings.learning_rate,
            total_steps=max(1, settings.epochs * steps_per_epoch),
        )
    elif name == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=0.5,
            patience=max(1, settings.early_stopping.patience // 2),
        )
    elif name == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer,
            step_size=settings.scheduler_step_size or 30,
            gamma=settings.scheduler_gamma or 0.1,
        )
    elif name == "exponential":
        scheduler = torch.optim.lr_scheduler.ExponentialLR(
            optimizer, gamma=settings.scheduler_gamma or 0.95
        )
    elif name == "reduce_on_plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=settings.scheduler_factor or 0.5,
            patience=settings.scheduler_patience or 5,
        )
    else:
        raise StrategyConfigError(
            "model.training.scheduler",
            f"expected one of {', '.join(SCHEDULERS)}, got {name!r}",
        )
    return LRSchedule(name, optimizer, scheduler)


@dataclass(slots=True)
class EarlyStopping:
    """Stops a run when the validation loss has not improved by ``min_delta`` for ``patience``.

    Whether or not it may stop the run, it keeps a copy of the weights of the epoch with the
    lowest validation loss, which the trainer puts back before the test evaluation: the
    model evaluated and saved is always the best epoch's, never merely the last one's.
    """

    enabled: bool
    patience: int
    min_delta: float
    best_loss: float = math.inf
    bad_epochs: int = 0
    best_weights: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_settings(cls, settings: TrainingSettings) -> EarlyStopping:
        es = settings.early_stopping
        return cls(enabled=es.enabled, patience=es.patience, min_delta=es.min_delta)

    def update(self, val_loss: float, model: torch.nn.Module | None = None) -> bool:
        """Record one epoch's validation loss; True when the run should stop."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
            self.bad_epochs = 0
            if model is not None:
                self.best_weights = {
                    name: value.detach().clone() for name, value in model.state_dict().items()
                }
        else:
            self.bad_epochs += 1
        return self.enabled and self.bad_epochs >= self.patience

    def restore_best(self, model: torch.nn.Module) -> bool:
        """Load the best epoch's weights into ``model``; False when none were kept."""
        if self.best_weights is None:
            return False
        model.load_state_dict(self.best_weights)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_loss": self.best_loss,
            "bad_epochs": self.bad_epochs,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_loss = float(state["best_loss"])
        self.bad_epochs = int(state["bad_epochs"])
        self.best_weights = state.get("best_weights")
