"""Our trained weights under KTRDR's key names, with our input normalisation folded in.

KTRDR builds its networks from ``config.json`` and loads ``model.pt`` strictly:

- MLP: ``nn.Sequential`` of Linear, activation, Dropout per hidden layer (the Dropout is
  there even at p=0), then the output Linear: keys ``0.*``, ``3.*``, ``6.*``, ... Ours
  flattens first and has no Dropout at p=0, so Linear layers are matched in order.
- LSTM / GRU: ``lstm.*`` / ``gru.*`` and the head ``fc.*``; ours are ``rnn.*`` and
  ``head.*``, the same modules (the head reads the last step's output, KTRDR's ``h_n[-1]``).

Our engine standardises every input with the train part's mean and std. KTRDR normalises
raw indicator inputs only (``normalization_params``). Standardising the membership inputs is
folded into the first layer instead: ``W x' + b`` with ``x' = (x - mean) / std`` equals
``(W / std) x + (b - W (mean / std))`` (computed in float64, stored as float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

KTRDR_ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", "leaky_relu"})
KTRDR_RECURRENT = ("lstm", "gru")
_LAYERS_PER_HIDDEN = 3  # Linear, activation, Dropout in KTRDR's Sequential
# Beyond this |mean| / std, folding an input's standardisation into float32 weights loses
# more than about 1e-4 of the first layer's values to rounding (W x and b cancel).
MAX_FOLDED_OFFSET = 1e3
# KTRDR's network class per model type (what era A/B's metadata.json names).
KTRDR_CLASSES = {"mlp": "MLPTradingModel", "lstm": "LSTMTradingModel", "gru": "GRUTradingModel"}


@dataclass(frozen=True)
class InputFold:
    """Standardisation of the inputs ``folded`` marks, to be taken into the first layer."""

    mean: np.ndarray  # [n_inputs]
    std: np.ndarray  # [n_inputs]
    folded: Sequence[bool]  # per input: standardised by the network (False: by KTRDR)

    def imprecise(self) -> list[int]:
        """The folded inputs that hardly vary on the train part (``MAX_FOLDED_OFFSET``)."""
        offset = np.abs(self.mean.astype(np.float64)) / self.std.astype(np.float64)
        folded = np.asarray(self.folded, dtype=bool)
        return [int(i) for i in np.flatnonzero(folded & (offset > MAX_FOLDED_OFFSET))]

    def apply(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first layer's ``weight [out, n_inputs]`` and ``bias`` that read raw inputs."""
        folded = np.asarray(self.folded, dtype=bool)
        if weight.shape[1] != len(folded):
            raise ValueError(f"a first layer of {weight.shape[1]} inputs, {len(folded)} to fold")
        scale = np.where(folded, 1.0 / self.std.astype(np.float64), 1.0)
        shift = np.where(folded, self.mean.astype(np.float64) / self.std.astype(np.float64), 0.0)
        w = weight.detach().cpu().double()
        new_weight = w * torch.from_numpy(scale)[None, :]
        new_bias = bias.detach().cpu().double() - w @ torch.from_numpy(shift)
        return new_weight.float(), new_bias.float()


def ktrdr_state_dict(
    model: nn.Module, model_type: str, activation: str, fold: InputFold | None = None
) -> dict[str, torch.Tensor] | None:
    """The weights under KTRDR's key names, or None where KTRDR has no network for them.

    Args:
        model: our trained network.
        model_type: ``mlp``, ``lstm`` or ``gru`` (anything else: None).
        activation: the MLP's hidden activation (KTRDR has relu, tanh, sigmoid, leaky_relu).
        fold: input standardisation to fold into the first layer (a one-bar MLP or any
            LSTM/GRU), or None to keep the weights as trained.
    """
    if model_type == "mlp":
        return _mlp_state(model, activation, fold)
    if model_type in KTRDR_RECURRENT:
        return _recurrent_state(model, model_type, fold)
    return None


def _mlp_state(
    model: nn.Module, activation: str, fold: InputFold | None
) -> dict[str, torch.Tensor] | None:
    if activation not in KTRDR_ACTIVATIONS:
        return None
    modules = list(model.modules())
    if not any(isinstance(m, nn.Flatten) for m in modules):
        return None
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    parametrised = [m for m in modules if list(m.parameters(recurse=False))]
    if not linears or len(parametrised) != len(linears):
        return None
    state: dict[str, torch.Tensor] = {}
    for index, linear in enumerate(linears):
        weight, bias = linear.weight.detach().cpu(), linear.bias.detach().cpu()
        if index == 0 and fold is not None:
            weight, bias = fold.apply(weight, bias)
        key = _LAYERS_PER_HIDDEN * index
        state[f"{key}.weight"] = weight.clone()
        state[f"{key}.bias"] = bias.clone()
    return state


def _recurrent_state(
    model: nn.Module, model_type: str, fold: InputFold | None
) -> dict[str, torch.Tensor] | None:
    renamed = {"rnn": model_type, "head": "fc"}
    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        module, _, name = key.partition(".")
        if module not in renamed:
            return None
        state[f"{renamed[module]}.{name}"] = tensor.detach().cpu().clone()
    first = (f"{model_type}.weight_ih_l0", f"{model_type}.bias_ih_l0")
    if not all(key in state for key in first):
        return None
    if fold is not None:
        state[first[0]], state[first[1]] = fold.apply(state[first[0]], state[first[1]])
    return state
