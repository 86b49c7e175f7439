"""Class shares of each part, class-weighted loss and the labeller's sample weights."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from training_engine.dataset import PreparedDataset
from training_engine.errors import DataError, StrategyConfigError
from training_engine.labels import uniqueness_weights
from training_engine.losses import build_loss, loss_class_weights
from training_engine.trainer import fit

from tests.engine.synthetic import make_dataset, make_strategy

torch.set_num_threads(1)


def _imbalanced() -> PreparedDataset:
    """HOLD on ~90% of samples; BUY/SELL follow a weak, noisy signal in feature 0."""
    return make_dataset(n_train=1500, n_val=400, n_test=400, threshold=1.9, noise=0.8)


def test_balanced_weights_follow_the_train_counts() -> None:
    # KTRDR's rule: 1 / count, scaled to sum to the number of classes; absent classes get 0.
    weights = loss_class_weights("balanced", np.array([1] * 6 + [0] * 3 + [2] * 3), 3)
    assert weights is not None
    assert weights.tolist() == pytest.approx([1.2, 0.6, 1.2])
    assert loss_class_weights("none", np.array([0, 1]), 3) is None
    assert loss_class_weights("balanced", np.array([0.5, -0.2]), 0) is None  # regression
    absent = loss_class_weights("balanced", np.array([1, 1, 0, 0]), 3)
    assert absent is not None and absent.tolist() == pytest.approx([1.5, 1.5, 0.0])


def test_weighted_cross_entropy_is_the_weighted_mean_of_the_sample_losses() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
    y = torch.tensor([0, 2, 1])
    per_sample = F.cross_entropy(logits, y, reduction="none")
    class_weight = torch.tensor([1.0, 2.0, 0.5])
    sample_weight = torch.tensor([1.0, 0.0, 3.0])
    expected = (per_sample * class_weight[y] * sample_weight).sum() / (
        class_weight[y] * sample_weight
    ).sum()
    settings = make_strategy().training
    weighted = build_loss(settings, class_weight, regression=False)
    assert weighted(logits, y, sample_weight).item() == pytest.approx(expected.item())
    torch_weighted = F.cross_entropy(logits, y, weight=class_weight)
    assert weighted(logits, y, None).item() == pytest.approx(torch_weighted.item())
    plain = build_loss(settings, None, regression=False)
    assert plain(logits, y, None).item() == pytest.approx(per_sample.mean().item())


def test_balanced_class_weights_make_the_model_predict_the_rare_classes() -> None:
    data = _imbalanced()
    plain = fit(data, make_strategy(epochs=6, class_weights="none")).result
    balanced = fit(data, make_strategy(epochs=6)).result  # balanced is the default
    assert plain.test_metrics is not None and balanced.test_metrics is not None
    rare_recall = [
        (r.test_metrics.recall["BUY"] + r.test_metrics.recall["SELL"]) / 2  # type: ignore[union-attr]
        for r in (plain, balanced)
    ]
    assert rare_recall[1] > rare_recall[0] + 0.2
    assert balanced.evaluation["loss"]["class_weights"] == "balanced"
    assert balanced.evaluation["loss"]["weights"][1] < 1 < balanced.evaluation["loss"]["weights"][0]


def test_class_shares_of_each_part_are_reported() -> None:
    data = _imbalanced()
    result = fit(data, make_strategy(epochs=1)).result
    shares = result.evaluation["class_shares"]
    assert list(shares) == ["train", "validation", "test"]
    for part, labels in zip(shares, (data.y_train, data.y_val, data.y_test), strict=True):
        assert shares[part]["samples"] == len(labels)
        assert shares[part]["HOLD"] == pytest.approx(float(np.mean(labels == 1)))
        assert sum(shares[part][name] for name in ("BUY", "HOLD", "SELL")) == pytest.approx(1.0)


def test_sample_weights_of_zero_silence_mislabelled_samples() -> None:
    # Half the train labels are scrambled; weight 0 on them recovers the clean model.
    data = make_dataset()
    rng = np.random.default_rng(1)
    scrambled = rng.random(len(data.y_train)) < 0.5
    noisy = np.where(scrambled, rng.integers(0, 3, len(data.y_train)), data.y_train)
    noisy_data = replace(data, y_train=noisy.astype(np.int64))
    weighted = replace(noisy_data, w_train=np.where(scrambled, 0.0, 1.0).astype(np.float32))
    strategy = make_strategy(epochs=4)
    plain = fit(noisy_data, strategy).result.test_metrics
    cleaned = fit(weighted, strategy).result
    assert plain is not None and cleaned.test_metrics is not None
    assert cleaned.test_metrics.accuracy > plain.accuracy + 0.03
    assert cleaned.evaluation["loss"]["sample_weights"] is True


def test_triple_barrier_uniqueness_weights_train_a_model() -> None:
    data = make_dataset()
    holds = np.random.default_rng(2).integers(1, 6, len(data.y_train))
    weights = uniqueness_weights(holds.astype(np.float64))
    result = fit(replace(data, w_train=weights.astype(np.float32)), make_strategy(epochs=2))
    assert result.result.status == "completed"


def test_sample_weights_must_match_the_train_part() -> None:
    data = replace(make_dataset(), w_train=np.ones(3, dtype=np.float32))
    with pytest.raises(DataError, match="one weight >= 0 per train sample"):
        fit(data, make_strategy(epochs=1))


def test_class_weights_setting_is_checked() -> None:
    assert make_strategy(class_weights="Balanced").training.class_weights == "balanced"
    with pytest.raises(StrategyConfigError, match="class_weights"):
        make_strategy(class_weights="balancd")
