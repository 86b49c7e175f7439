"""Training labels from future prices, with KTRDR's label sources and meanings.

Every labeller reads only the arrays it is given, which are meant to be ONE part
(train, validation or test) of the data. A bar whose label would need a price
after the end of those arrays gets no label: ``UNLABELLED`` (-1) for classes,
NaN for returns. A label that is given never changes when bars are appended,
so labels computed per part never see another part's prices (KTRDR computes
them over the whole series, so its training labels read validation prices).

=================== ====================================================== ===========
source              meaning                                                classes
=================== ====================================================== ===========
zigzag              ZigZag segments: bars between two pivots BUY if the    0 BUY
                    next pivot is higher, SELL if lower; pivots HOLD.      1 HOLD
                    Bars from the running (unconfirmed) extreme on: none.  2 SELL
forward_return      close[t+horizon] / close[t] - 1 (a regression target)  float
triple_barrier      first barrier touched by high/low within               0 BUY (profit)
                    max_holding_period bars; barriers scale with           1 HOLD (expiry)
                    EWMA volatility. Also holding periods and weights.     2 SELL (stop)
regime              forward signed efficiency ratio + realised vol ratio   0 up 1 down
                                                                           2 range 3 volatile
multi_scale_regime  macro ZigZag leg + micro pivot progression + vol       same as regime
context             forward return over horizon vs two thresholds          0 BULLISH
                                                                           1 BEARISH 2 NEUTRAL
=================== ====================================================== ===========

``label_bars`` picks one by a strategy's ``training.labels.source``
(``regime`` is KTRDR's multi-scale labeller, as in its training pipeline);
``lookahead_move`` (:func:`lookahead_move_labels`) is the engine's earlier
fixed-lookahead rule, no longer what ``zigzag`` means.

Two labellers scale a threshold by the prices themselves: the regime ZigZag
thresholds (median ATR over median close) and CUSUM's h when
``cusum_threshold`` is 0 (mean volatility). Over a part, that scale would
depend on how many bars follow in the part, so :func:`fit_label_scale` fits it
on the train part and ``label_bars`` applies it to every part (as normalisation
is fitted); without a fitted scale a labeller scales by the bars it is given
(KTRDR's rule over a whole series).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from training_engine.strategy import LabelConfig
from training_engine.zigzag import zigzag_pivots

# The classes of strategy.names.LABEL_CLASSES, in its order.
BUY, HOLD, SELL = 0, 1, 2
UNLABELLED = -1

TRENDING_UP, TRENDING_DOWN, RANGING, VOLATILE = 0, 1, 2, 3
BULLISH, BEARISH, NEUTRAL = 0, 1, 2


def _prices(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


# ---------------------------------------------------------------- zigzag segments


def zigzag(close: np.ndarray, zigzag_threshold: float = 0.05) -> np.ndarray:
    """KTRDR's ZigZag segment labels (``generate_segment_labels``), int64 per bar.

    Pivots come from :func:`training_engine.zigzag.zigzag_pivots`. Bars strictly
    between two pivots are BUY if the later pivot is higher, else SELL;
    confirmed pivots are HOLD. The direction of the leg into the running
    extreme is already fixed, so the bars before it are labelled too; the
    running extreme and every bar after it are UNLABELLED.
    """
    prices = _prices(close)
    labels = np.full(len(prices), UNLABELLED, dtype=np.int64)
    pivots = zigzag_pivots(prices, zigzag_threshold).indices
    if len(pivots) == 0:
        return labels
    for start, end in pairwise(pivots):
        labels[start] = HOLD
        labels[start + 1 : end] = BUY if prices[end] > prices[start] else SELL
    if len(pivots) == 1:
        labels[0] = HOLD  # the first bar is a pivot whatever follows
    return labels


# ---------------------------------------------------------------- forward return


def forward_return(close: np.ndarray, horizon: int = 20) -> np.ndarray:
    """(close[t+horizon] - close[t]) / close[t]; NaN for the last ``horizon`` bars."""
    prices = _prices(close)
    result = np.full(len(prices), np.nan)
    if len(prices) > horizon:
        now = prices[: len(prices) - horizon]
        result[: len(now)] = (prices[horizon:] - now) / now
    return result


# ---------------------------------------------------------------- triple barrier


@dataclass(frozen=True, slots=True)
class TripleBarrierLabels:
    """Per bar: class (BUY/HOLD/SELL or UNLABELLED), bars held, barrier widths."""

    labels: np.ndarray  # int64
    holding_periods: np.ndarray  # int64, 0 where unlabelled
    upper_barriers: np.ndarray  # take-profit distance as a fraction of the entry close
    lower_barriers: np.ndarray  # stop-loss distance as a fraction of the entry close


def barrier_volatility(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    vol_span: int = 50,
    vol_method: str = "atr",
) -> np.ndarray:
    """KTRDR's per-bar volatility for the barriers (a fraction of price).

    ``atr``: EWMA (span ``vol_span``, pandas' adjusted weights) of (high - low) / close.
    ``close``: EWMA standard deviation of close-to-close log returns (bar 0 NaN).
    Bars before ``vol_span`` whose value is NaN or 0 take the value at bar
    ``vol_span`` (KTRDR's warm-up fill); NaN if the part is not that long.
    """
    prices, highs, lows = _prices(close), _prices(high), _prices(low)
    if vol_method == "atr":
        vol = pd.Series((highs - lows) / prices).ewm(span=vol_span).mean().to_numpy()
    elif vol_method == "close":
        vol = np.full(len(prices), np.nan)
        returns = pd.Series(np.diff(np.log(prices)))
        vol[1:] = returns.ewm(span=vol_span).std().to_numpy()
    else:
        raise ValueError(f"vol_method must be 'atr' or 'close', not {vol_method!r}")
    vol = vol.astype(np.float64, copy=True)
    warm = min(vol_span, len(vol))
    fill = vol[vol_span] if vol_span < len(vol) else np.nan
    head = vol[:warm]
    head[np.isnan(head) | (head == 0)] = fill
    return vol


def triple_barrier(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    pt_multiplier: float = 2.0,
    sl_multiplier: float = 1.5,
    max_holding_period: int = 50,
    vol_span: int = 50,
    vol_method: str = "atr",
) -> TripleBarrierLabels:
    """KTRDR's triple-barrier outcome of entering at each bar's close.

    Upper barrier close*(1 + pt_multiplier*vol), lower close*(1 - sl_multiplier*vol).
    Walking bars t+1 .. t+max_holding_period: high >= upper is take-profit (BUY),
    low <= lower stop-loss (SELL); both in one bar: BUY if that bar closes >= the
    entry. If neither is touched, the return at t+max_holding_period decides:
    HOLD when |return| < 0.5 * vol * sqrt(max_holding_period), else its sign.
    A bar needs max_holding_period later bars in the part, and the part needs
    more than ``vol_span`` bars (the warm-up fill reads bar ``vol_span``).
    """
    prices, highs, lows = _prices(close), _prices(high), _prices(low)
    n = len(prices)
    vol = barrier_volatility(prices, highs, lows, vol_span, vol_method)
    labels = np.full(n, UNLABELLED, dtype=np.int64)
    holds = np.zeros(n, dtype=np.int64)
    upper_width = pt_multiplier * vol
    lower_width = sl_multiplier * vol
    count = n - max_holding_period if n > vol_span else 0
    for t in range(max(count, 0)):
        entry = prices[t]
        upper = entry * (1.0 + upper_width[t])
        lower = entry * (1.0 - lower_width[t])
        path = slice(t + 1, t + max_holding_period + 1)
        hits = np.flatnonzero((highs[path] >= upper) | (lows[path] <= lower))
        if len(hits):
            step = t + 1 + hits[0]
            took_profit = highs[step] >= upper
            if took_profit and lows[step] <= lower:
                took_profit = prices[step] >= entry
            labels[t] = BUY if took_profit else SELL
            holds[t] = step - t
            continue
        change = prices[t + max_holding_period] / entry - 1.0
        if abs(change) < vol[t] * np.sqrt(max_holding_period) * 0.5 or change == 0:
            labels[t] = HOLD
        else:
            labels[t] = BUY if change > 0 else SELL
        holds[t] = max_holding_period
    unlabelled = labels == UNLABELLED
    return TripleBarrierLabels(
        labels=labels,
        holding_periods=holds,
        upper_barriers=np.where(unlabelled, np.nan, upper_width),
        lower_barriers=np.where(unlabelled, np.nan, lower_width),
    )


def uniqueness_weights(holding_periods: np.ndarray, normalize: bool = True) -> np.ndarray:
    """KTRDR's sample-uniqueness weights for overlapping triple-barrier labels.

    A labelled bar t (holding period h > 0) is active on bars t .. t+h-1; its
    weight is the mean of 1 / (number of labels active) over those bars.
    ``normalize`` scales the labelled weights to mean 1. Unlabelled bars: NaN.
    """
    holds = np.asarray(holding_periods, dtype=np.int64)
    n = len(holds)
    labelled = np.flatnonzero(holds > 0)
    weights = np.full(n, np.nan)
    if len(labelled) == 0:
        return weights
    extent = n + int(holds.max())
    starts = np.zeros(extent + 1)
    np.add.at(starts, labelled, 1.0)
    np.add.at(starts, labelled + holds[labelled], -1.0)
    concurrency = np.cumsum(starts)[:extent]
    inverse = np.concatenate([[0.0], np.cumsum(1.0 / concurrency.clip(min=1.0))])
    ends = labelled + holds[labelled]
    weights[labelled] = (inverse[ends] - inverse[labelled]) / holds[labelled]
    if normalize:
        weights[labelled] /= weights[labelled].mean()
    return weights


def cusum_scale(close: np.ndarray, cusum_multiplier: float = 0.5, vol_span: int = 50) -> float:
    """KTRDR's derived CUSUM h: cusum_multiplier * the mean EWMA std of the log returns."""
    returns = pd.Series(np.diff(np.log(_prices(close))))
    return cusum_multiplier * float(returns.ewm(span=vol_span).std().mean())


def cusum_events(
    close: np.ndarray,
    cusum_threshold: float = 0.0,
    cusum_multiplier: float = 0.5,
    vol_span: int = 50,
) -> np.ndarray:
    """KTRDR's CUSUM event filter: True on bars where a move has accumulated.

    Positive and negative sums of log returns minus/plus h; a bar is an event
    when a sum passes h, which resets it. h is ``cusum_threshold`` when > 0,
    else :func:`cusum_scale` of the bars given.
    """
    returns = np.diff(np.log(_prices(close)))
    events = np.zeros(len(returns) + 1, dtype=bool)
    h = cusum_threshold if cusum_threshold > 0 else cusum_scale(close, cusum_multiplier, vol_span)
    positive = negative = 0.0
    for i, change in enumerate(returns):
        positive = max(0.0, positive + change - h)
        negative = min(0.0, negative + change + h)
        if positive > h:
            events[i + 1] = True
            positive = 0.0
        elif negative < -h:
            events[i + 1] = True
            negative = 0.0
    return events


# ---------------------------------------------------------------- regimes


def _rolling_std(log_returns: np.ndarray, window: int) -> np.ndarray:
    """std (ddof=1) of log_returns[s : s + window] for every start s."""
    if window < 2 or len(log_returns) < window:
        return np.zeros(max(len(log_returns) - window + 1, 0))
    return np.asarray(sliding_window_view(log_returns, window).std(axis=1, ddof=1))


def _volatility_ratio(close: np.ndarray, forward: int, lookback: int) -> np.ndarray:
    """std of the next ``forward`` log returns / std of the previous ``lookback``.

    NaN where either window leaves the part (t < lookback or t + forward > n - 1);
    0 where the historical std is 0 (KTRDR's choice).
    """
    n = len(close)
    ratio = np.full(n, np.nan)
    log_returns = np.diff(np.log(np.maximum(close, 1e-10)))
    last = n - forward  # exclusive end of the bars with a full forward window
    if last <= lookback:
        return ratio
    span = np.arange(lookback, last)
    forward_std = _rolling_std(log_returns, forward)[span]
    history_std = _rolling_std(log_returns, lookback)[span - lookback]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio[span] = np.where(history_std > 0, forward_std / history_std, 0.0)
    return ratio


def regime(
    close: np.ndarray,
    horizon: int = 24,
    trending_threshold: float = 0.3,
    vol_crisis_threshold: float = 2.0,
    vol_lookback: int = 120,
) -> np.ndarray:
    """KTRDR's ``RegimeLabeler``: signed efficiency ratio + realised volatility.

    SER = (close[t+h] - close[t]) / sum |close[i+1] - close[i]| over t..t+h-1
    (0 on a flat path); RV ratio = std of the next h log returns / std of the
    previous vol_lookback. VOLATILE if RV ratio > vol_crisis_threshold, else
    TRENDING_UP if SER > trending_threshold, TRENDING_DOWN if SER < -it, else
    RANGING. UNLABELLED before bar vol_lookback and in the last h bars.
    """
    prices = _prices(close)
    n = len(prices)
    labels = np.full(n, UNLABELLED, dtype=np.int64)
    if n <= horizon:
        return labels
    steps = np.abs(np.diff(prices))
    count = n - horizon
    net = prices[horizon:] - prices[:count]
    # One 1-D sum per bar, as KTRDR sums: other orders round differently and
    # flip ratios that sit exactly on the threshold.
    length = np.array([steps[t : t + horizon].sum() for t in range(count)])
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(length == 0, 0.0, net / length)
    ratio = _volatility_ratio(prices, horizon, vol_lookback)[:count]
    valid = ~np.isnan(ratio)
    head = labels[:count]
    head[valid] = RANGING
    head[valid & (efficiency > trending_threshold)] = TRENDING_UP
    head[valid & (efficiency < -trending_threshold)] = TRENDING_DOWN
    head[valid & (ratio > vol_crisis_threshold)] = VOLATILE
    return labels


def atr_threshold(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, atr_mult: float, atr_period: int
) -> float:
    """atr_mult * median(SMA(true range, atr_period)) / median(close), over the part."""
    prices, highs, lows = _prices(close), _prices(high), _prices(low)
    if len(prices) < atr_period:
        return 0.0
    previous = np.concatenate([[np.nan], prices[:-1]])
    true_range = np.fmax(highs - lows, np.fmax(abs(highs - previous), abs(lows - previous)))
    average = sliding_window_view(true_range, atr_period).mean(axis=1)
    middle = float(np.median(prices))
    return atr_mult * float(np.median(average)) / middle if middle > 0 else 0.0


def _progresses(prices: np.ndarray, rising: bool, tolerance: float) -> bool:
    """Do the micro pivot lows rise (``rising``) / highs fall, in >= tolerance of pairs?

    As KTRDR reads pivots: a middle pivot above both neighbours is a high, below
    both a low, else neither; an end pivot is a low if below its one neighbour,
    else a high. Needs 4 pivots and 2 of the chosen kind.
    """
    if len(prices) < 4:
        return False
    role = np.zeros(len(prices), dtype=np.int64)  # -1 low, +1 high, 0 neither
    middle, before, after = prices[1:-1], prices[:-2], prices[2:]
    role[1:-1][(middle > before) & (middle > after)] = 1
    role[1:-1][(middle < before) & (middle < after)] = -1
    role[0] = -1 if prices[0] < prices[1] else 1
    role[-1] = -1 if prices[-1] < prices[-2] else 1
    chosen = prices[role == (-1 if rising else 1)]
    if len(chosen) < 2:
        return False
    steps = np.diff(chosen)
    good = steps > 0 if rising else steps < 0
    return float(good.mean()) >= tolerance


def multi_scale_regime(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    macro_atr_mult: float = 3.0,
    micro_atr_mult: float = 1.0,
    atr_period: int = 14,
    vol_lookback: int = 120,
    vol_crisis_threshold: float = 2.0,
    progression_tolerance: float = 0.5,
) -> np.ndarray:
    """KTRDR's ``MultiScaleRegimeLabeler`` (what its ``source: regime`` trains on).

    ZigZag thresholds are ATR multiples (:func:`atr_threshold`, over the bars
    given; the engine fits them on the train part, :func:`fit_label_scale`).
    Each macro leg (pivot to next pivot) is TRENDING_UP/DOWN when the micro
    pivots inside it progress (higher lows / lower highs in at least
    progression_tolerance of pairs), else RANGING; VOLATILE wherever the
    forward atr_period-bar realised vol over the previous vol_lookback exceeds
    vol_crisis_threshold. Labelled only where no later bar could change it.
    """
    thresholds = (
        atr_threshold(close, high, low, macro_atr_mult, atr_period),
        atr_threshold(close, high, low, micro_atr_mult, atr_period),
    )
    return _multi_scale_regime_with(
        _prices(close), thresholds, atr_period, vol_lookback, vol_crisis_threshold,
        progression_tolerance,
    )  # fmt: skip


def _multi_scale_regime_with(
    prices: np.ndarray,
    thresholds: tuple[float, float],
    atr_period: int,
    vol_lookback: int,
    vol_crisis_threshold: float,
    progression_tolerance: float,
) -> np.ndarray:
    """:func:`multi_scale_regime` for given (macro, micro) ZigZag thresholds."""
    n = len(prices)
    labels = np.full(n, UNLABELLED, dtype=np.int64)
    if n < atr_period + 2 or min(thresholds) <= 0:
        return labels
    macro = zigzag_pivots(prices, thresholds[0]).indices
    micro = zigzag_pivots(prices, thresholds[1]).indices
    settled_micro = micro[-2] if len(micro) >= 2 else 0  # last confirmed micro pivot
    volatile = _volatility_ratio(prices, atr_period, vol_lookback) > vol_crisis_threshold
    # Legs whose both ends are confirmed: every macro pivot but the running one.
    # A leg's start bar is labelled by that leg (KTRDR lets the later leg win).
    for start, end in pairwise(macro[:-1]):
        if settled_micro < end:
            break  # micro pivots in this leg may still move
        inside = micro[(micro >= start) & (micro <= end)]
        rising = bool(prices[end] > prices[start])
        leg = RANGING
        if _progresses(prices[inside], rising, progression_tolerance):
            leg = TRENDING_UP if rising else TRENDING_DOWN
        labels[start:end] = leg
    labels[(labels != UNLABELLED) & volatile] = VOLATILE
    labels[n - atr_period :] = UNLABELLED  # their forward vol window leaves the part
    return labels


# ---------------------------------------------------------------- context


def context(
    close: np.ndarray,
    horizon: int = 5,
    bullish_threshold: float = 0.005,
    bearish_threshold: float = -0.005,
) -> np.ndarray:
    """KTRDR's ``ContextLabeler``: r = close[t+h]/close[t] - 1.

    BULLISH (0) if r > bullish_threshold, BEARISH (1) if r < bearish_threshold,
    else NEUTRAL (2); UNLABELLED for the last ``horizon`` bars.
    """
    change = forward_return(close, horizon)
    labels = np.full(len(change), UNLABELLED, dtype=np.int64)
    known = ~np.isnan(change)
    labels[known] = NEUTRAL
    labels[known & (change > bullish_threshold)] = BULLISH
    labels[known & (change < bearish_threshold)] = BEARISH
    return labels


# ---------------------------------------------------------------- the earlier rules


def lookahead_move_labels(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    """The engine's earlier rule, for the first ``len(close) - lookahead`` bars.

    Over closes t+1 .. t+lookahead: rise = max/close_t - 1, fall = 1 - min/close_t;
    BUY when rise >= threshold and rise > fall, SELL symmetrically, else HOLD.
    """
    prices = _prices(close)
    count = len(prices) - lookahead
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    future = sliding_window_view(prices[1:], lookahead)[:count]
    now = prices[:count]
    rise = future.max(axis=1) / now - 1.0
    fall = 1.0 - future.min(axis=1) / now
    labels = np.full(count, HOLD, dtype=np.int64)
    labels[(rise >= threshold) & (rise > fall)] = BUY
    labels[(fall >= threshold) & (fall > rise)] = SELL
    return labels


def threshold_return_labels(close: np.ndarray, horizon: int, threshold: float) -> np.ndarray:
    """BUY / SELL when close[t+horizon]/close[t] - 1 is above threshold / below -threshold."""
    change = forward_return(close, horizon)[: max(len(close) - horizon, 0)]
    labels = np.full(len(change), HOLD, dtype=np.int64)
    labels[change > threshold] = BUY
    labels[change < -threshold] = SELL
    return labels


@dataclass(frozen=True, slots=True)
class LabelScale:
    """Thresholds a labeller derives from prices, fitted on the train part (None: not used).

    ``zigzag_thresholds``: the regime labellers' (macro, micro) ZigZag thresholds;
    ``cusum_threshold``: CUSUM's h where ``cusum_threshold`` is 0 (derive it).
    """

    zigzag_thresholds: tuple[float, float] | None = None
    cusum_threshold: float | None = None

    @property
    def is_empty(self) -> bool:
        return self.zigzag_thresholds is None and self.cusum_threshold is None


def fit_label_scale(frame: pd.DataFrame, config: LabelConfig) -> LabelScale:
    """The thresholds ``config``'s labeller derives from the bars of ``frame`` (the train part).

    Label every part with the result (``label_bars(part, config, scale)``), so that a bar's
    label does not depend on the part that labels it, nor on the bars after it.
    """
    if config.source in ("regime", "multi_scale_regime"):
        close, high, low = _close_high_low(frame)
        return LabelScale(
            zigzag_thresholds=(
                atr_threshold(close, high, low, config.macro_atr_mult, config.atr_period),
                atr_threshold(close, high, low, config.micro_atr_mult, config.atr_period),
            )
        )
    if config.source == "triple_barrier" and config.cusum_threshold == 0:
        close = frame["close"].to_numpy(dtype=np.float64)
        return LabelScale(
            cusum_threshold=cusum_scale(close, config.cusum_multiplier, config.vol_span)
        )
    return LabelScale()


@dataclass(frozen=True, slots=True)
class BarLabels:
    """Per bar: the target (a class as float, or a return; NaN: no label) and its weight."""

    targets: np.ndarray  # float64
    weights: np.ndarray | None  # float64 per bar (triple_barrier's compute_weights), or None


def _classes(labels: np.ndarray) -> np.ndarray:
    return np.where(labels == UNLABELLED, np.nan, labels.astype(np.float64))


def _close_high_low(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    close, high, low = (frame[c].to_numpy(dtype=np.float64) for c in ("close", "high", "low"))
    return close, high, low


def _triple_barrier_labels(
    frame: pd.DataFrame, config: LabelConfig, scale: LabelScale
) -> BarLabels:
    close, high, low = _close_high_low(frame)
    result = triple_barrier(
        close,
        high,
        low,
        config.pt_multiplier,
        config.sl_multiplier,
        config.max_holding_period,
        config.vol_span,
        config.vol_method,
    )
    labels = result.labels.copy()
    if config.cusum_threshold is not None:
        h = scale.cusum_threshold if scale.cusum_threshold is not None else config.cusum_threshold
        events = cusum_events(close, h, config.cusum_multiplier, config.vol_span)
        labels[~events] = UNLABELLED
    if not config.compute_weights:
        return BarLabels(_classes(labels), None)
    holds = np.where(labels == UNLABELLED, 0, result.holding_periods)
    return BarLabels(_classes(labels), uniqueness_weights(holds))


def label_bars(
    frame: pd.DataFrame, config: LabelConfig, scale: LabelScale | None = None
) -> BarLabels:
    """Every bar's label by ``config.source``, from the OHLCV bars of ``frame`` alone.

    ``frame`` ends where the part being labelled ends: a bar whose label needs a
    later bar gets NaN. Classes come back as floats (0.0, 1.0, ...). ``scale``: the
    thresholds fitted on the train part (:func:`fit_label_scale`); None fits them
    on ``frame`` itself.
    """
    if scale is None:
        scale = fit_label_scale(frame, config)
    close = frame["close"].to_numpy(dtype=np.float64)
    source = config.source
    if source == "zigzag":
        return BarLabels(_classes(zigzag(close, config.zigzag_threshold)), None)
    if source == "forward_return":
        return BarLabels(forward_return(close, config.forward_horizon), None)
    if source == "context":
        labels = context(
            close, config.forward_horizon, config.bullish_threshold, config.bearish_threshold
        )
        return BarLabels(_classes(labels), None)
    if source == "triple_barrier":
        return _triple_barrier_labels(frame, config, scale)
    if source in ("regime", "multi_scale_regime"):
        assert scale.zigzag_thresholds is not None  # fit_label_scale sets them for regimes
        labels = _multi_scale_regime_with(
            close,
            scale.zigzag_thresholds,
            config.atr_period,
            config.vol_lookback,
            config.vol_crisis_threshold,
            config.progression_tolerance,
        )
        return BarLabels(_classes(labels), None)
    if source == "lookahead_move":
        moves = lookahead_move_labels(close, config.threshold, config.label_lookahead)
        targets = np.full(len(close), np.nan)
        targets[: len(moves)] = moves
        return BarLabels(targets, None)
    raise ValueError(f"unknown label source {source!r}")
