"""Strategy files: KTRDR-format YAML validated by pydantic models into one typed config.

    document.py    StrategyDocument (a file / inline ``strategy``), TrainingOverrides (``config``)
    sections.py    the document's sections: misspelt keys refused, unused keys collected
    config.py      StrategyConfig and its sections: what the engine reads, and every default
    resolve.py     document -> config: indicator table, fuzzy targets, the unused-key list
    loading.py     parse_strategy, load_strategy, with_overrides, strategy_to/from_dict
    values.py      value types, and the refusals users see; problems.py: errors -> keys
    names.py       the registries' names (models, optim, losses): a leaf both sides import
    indicator_table.py  KTRDR's indicator registry; references.py: what fuzzy sets read

A value of the wrong kind, or a key that looks like a misspelling of one the engine reads
(``epocs``), is rejected with a ``StrategyConfigError`` naming its dotted path. Keys the
engine has no use for (``decisions``, ``deployment``, ``nn_inputs``, ...) are reported in a
single warning, so existing KTRDR strategies train here unchanged.
"""

from training_engine.strategy.config import (
    DataSplit,
    EarlyStoppingConfig,
    FeatureConfig,
    FuzzySetSpec,
    IndicatorSpec,
    LabelConfig,
    ModelConfig,
    NNInput,
    StrategyConfig,
    TrainingSettings,
)
from training_engine.strategy.document import StrategyDocument, TrainingOverrides
from training_engine.strategy.loading import (
    STRATEGY_FILE_SUFFIXES,
    load_strategy,
    override_training,
    parse_strategy,
    strategy_from_dict,
    strategy_to_dict,
    with_overrides,
)
from training_engine.strategy.values import validate_symbol, validate_timeframe

__all__ = [
    "STRATEGY_FILE_SUFFIXES",
    "DataSplit",
    "EarlyStoppingConfig",
    "FeatureConfig",
    "FuzzySetSpec",
    "IndicatorSpec",
    "LabelConfig",
    "ModelConfig",
    "NNInput",
    "StrategyConfig",
    "StrategyDocument",
    "TrainingOverrides",
    "TrainingSettings",
    "load_strategy",
    "override_training",
    "parse_strategy",
    "strategy_from_dict",
    "strategy_to_dict",
    "validate_symbol",
    "validate_timeframe",
    "with_overrides",
]
