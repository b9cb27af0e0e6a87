"""Honest performance metrics: geometric CAGR, volatility, Sharpe, Sortino, max drawdown, Calmar, turnover.

Nothing is clipped (the older system clipped daily returns to [−0.9999, 10], Sharpe to [−4, 5], annual return to
[−0.9999, 5] and volatility to ≤ 5), nothing is annualised linearly (the older system switched to `mean·A` below
30 observations), and a total loss is a CAGR of exactly −1 (the older system got NaN).

Definitions (r = the T daily simple returns, A = the profile's annualisation, 252 or 365; G = Π(1 + r)):

| metric | definition | QuantStats 0.0.86 call that agrees to 1e-9 |
|---|---|---|
| total_return | G − 1 | `qs.stats.comp(s)` |
| cagr | G^(A/T) − 1: years are counted as T / A observations, not calendar days | `qs.stats.cagr(s, periods=A)` |
| volatility | std(r, ddof = 1) · √A | `qs.stats.volatility(s, periods=A)` |
| sharpe | mean(r) / std(r, ddof = 1) · √A (risk-free rate 0) | `qs.stats.sharpe(s, periods=A)` |
| sortino | mean(r) / √(Σ_{r<0} r² / T) · √A (target 0) | `qs.stats.sortino(s, periods=A)` |
| max_drawdown | min_t E_t / max(1, E_1 … E_t) − 1, E = cumprod(1 + r); ≤ 0 | `qs.stats.max_drawdown(s)` |
| calmar | cagr / |max_drawdown| | `qs.stats.calmar(s, periods=A)` |
| avg_turnover | mean one-way turnover ½Σ|Δw| per rebalance | (not in QuantStats) |

where `s = pd.Series(r, index=dates)` with a daily DatetimeIndex (business days for A = 252, calendar days for
A = 365; QuantStats needs a DatetimeIndex only for the phantom start point of `max_drawdown`, and none of the
values above depends on the dates). With QuantStats' defaults `rf=0`, `annualize=True`, `compounded=True`,
`smart=False`. `annualisation` is passed as `periods` to every call that takes it; `max_drawdown` takes none.

Edge cases (decisions):

* A ratio whose denominator is exactly zero is NaN ("undefined"), never ±inf. This is QuantStats' own rule for
  `sortino` (no losing day → NaN) applied to the other ratios: zero volatility (all T returns identical, or
  T < 2) gives `volatility` 0 (NaN for T < 2) and `sharpe` NaN; no drawdown gives `calmar` NaN. QuantStats
  divides here instead and returns inf, NaN or ~1e16 from floating-point noise in the std of a constant series.
* sortino's downside deviation squares the losing days only but divides by all T days (QuantStats' definition).
* max_drawdown counts the start (equity 1 before the first day) as a peak, as QuantStats' phantom start point does,
  so a first-day loss is a drawdown; 0.0 if equity never falls below a running peak.
* Zero volatility is decided exactly (all returns equal), so a constant series has volatility 0.0, not 1e-18.
* A total loss (a −100 % day; per the simulator contract the cell then stays flat) gives G = 0, so total_return,
  cagr, max_drawdown and calmar are all exactly −1.0; QuantStats agrees.
* A daily return below −100 % is rejected (ValueError): equity cannot go below zero under the liquidation contract
  of `SimulationResult`, and negative wealth has no real growth rate (QuantStats returns NaN for it).
* Non-finite returns are rejected: the simulators already map "no session" to a zero return.
* Short series are annualised geometrically like any other: 10 days at +1 % a day is a CAGR of
  (1.01¹⁰)^25.2 − 1 ≈ 1127 % with A = 252 (linear annualisation would say 252 %). That is the true rate, however
  extreme; gate on stitched out-of-sample series, not on single windows.
* QuantStats guesses whether a series holds returns or prices (all values ≥ 0 with one above 1 is read as prices,
  and so is a +500 % day on an otherwise non-negative series); we never guess: the input is always returns.
* avg_turnover: NaN when no turnover is given, 0.0 for an empty turnover array (no rebalance, no trading).

Research metrics (the strict scoreboard's gates):

* `friction_decay(S_real, S_ideal) = 1 − S_real / S_ideal`, NaN when S_ideal ≤ 0 or either is NaN: a strategy
  with no edge before costs has nothing for friction to decay, so the measure is undefined (reported as missing).
* `sharpe_dispersion(window_sharpes, window_rows, A)`: how much the per-window Sharpe ratios differ, in units
  of the noise a window of that length shows. A window's annualised Sharpe over n rows has a sampling std of
  about √(A / n) even when the strategy never changes (3.5 for 20-row windows at A = 252), so a raw std of window
  Sharpes is mostly that noise and a 1.5 threshold on it would reject every strategy. Each window's Sharpe is
  turned into its t-statistic Ŝ·√(n / A) (sampling std ≈ 1 whatever n is) and the measure is the sample std
  (ddof = 1) of those: ≈ 1 for a strategy whose true Sharpe is the same in every window, 1.5 = half as much
  again as noise explains (a time-unstable edge). NaN windows (flat) are skipped; NaN with fewer than two.
  (The older system gated std / |mean| of window Sharpes, which at 20-row windows passes only a mean Sharpe
  above ≈ 2.4 and was 0, a pass, whenever the mean was near 0.)
* `selection_overlap(sets_by_window)`: mean Jaccard |A∩B| / |A∪B| of consecutive windows' selections (two empty
  selections overlap fully, 1.0); NaN with fewer than two windows.
* `tail_risk_ratio(cell, market)`: max(CVaR₉₅ ratio, max-drawdown ratio) of the cell's losses over the market's on
  the same days; CVaR₉₅ = −mean of the worst ⌈5 % · T⌉ daily returns; NaN when the market has no tail loss or no
  drawdown to compare with.
* `parity_gap(a, b) = |a − b|` of two simulators' annual returns (CAGR) for the same cell.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

NAN = float("nan")


@dataclass(frozen=True)
class Metrics:
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float  # ≤ 0
    calmar: float
    avg_turnover: float
    n_obs: int
    annualisation: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _returns_array(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {r.shape}")
    if r.size == 0:
        raise ValueError("returns are empty: no observations to measure")
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite (map a missing session to a zero return)")
    if (r < -1.0).any():
        raise ValueError(
            f"a daily return below −100 % ({r.min():.6g}) breaks the liquidation contract: equity cannot go below 0"
        )
    return r


def _check_annualisation(annualisation: int) -> int:
    if isinstance(annualisation, bool) or not isinstance(annualisation, (int, np.integer)) or annualisation < 1:
        raise ValueError(f"annualisation must be a positive integer, got {annualisation!r}")
    return int(annualisation)


def total_return(returns) -> float:
    r = _returns_array(returns)
    return float(np.prod(1.0 + r) - 1.0)


def cagr(returns, annualisation: int) -> float:
    """G^(A/T) − 1 with years = T / A, as `qs.stats.cagr(s, periods=A)`. Exactly −1.0 after a total loss."""
    r = _returns_array(returns)
    a = _check_annualisation(annualisation)
    growth = float(np.prod(1.0 + r))
    if growth == 0.0:
        return -1.0
    years = r.size / a
    return float(growth ** (1.0 / years) - 1.0)


def _std(r: np.ndarray) -> float:
    """Sample std (ddof = 1); exactly 0 for a constant series, NaN below two observations."""
    if r.size < 2:
        return NAN
    if (r == r[0]).all():
        return 0.0
    return float(np.std(r, ddof=1))


def volatility(returns, annualisation: int) -> float:
    r = _returns_array(returns)
    return _std(r) * math.sqrt(_check_annualisation(annualisation))


def sharpe(returns, annualisation: int) -> float:
    """mean / std(ddof = 1) · √A (rf = 0); NaN when the std is 0 or undefined."""
    r = _returns_array(returns)
    a = _check_annualisation(annualisation)
    sd = _std(r)
    if not sd > 0:
        return NAN
    return float(r.mean() / sd * math.sqrt(a))


def sortino(returns, annualisation: int) -> float:
    """mean / √(Σ_{r<0} r² / T) · √A (target 0); NaN without a losing day, as QuantStats."""
    r = _returns_array(returns)
    a = _check_annualisation(annualisation)
    losses = r[r < 0]
    downside = math.sqrt(float((losses**2).sum()) / r.size)
    if downside == 0.0:
        return NAN
    return float(r.mean() / downside * math.sqrt(a))


def max_drawdown(returns) -> float:
    """Deepest fall from a running peak of equity, the start (1.0) included; ≤ 0, −1.0 after a total loss."""
    r = _returns_array(returns)
    equity = np.concatenate(([1.0], np.cumprod(1.0 + r)))
    peaks = np.maximum.accumulate(equity)
    return float((equity / peaks).min() - 1.0)


def calmar(returns, annualisation: int) -> float:
    """cagr / |max_drawdown|; NaN without a drawdown."""
    mdd = max_drawdown(returns)
    if mdd == 0.0:
        return NAN
    return float(cagr(returns, annualisation) / abs(mdd))


def average_turnover(turnover) -> float:
    if turnover is None:
        return NAN
    t = np.asarray(turnover, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"turnover must be one-dimensional, got shape {t.shape}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("turnover must be finite and non-negative")
    return float(t.mean()) if t.size else 0.0


def performance(
    returns: np.ndarray,
    annualisation: int,
    dates: np.ndarray | None = None,
    turnover: np.ndarray | None = None,
) -> Metrics:
    """Every metric of one daily return series (see the module docstring for definitions and edge cases).

    `dates`, when given, must be one strictly ascending date per return; they are validated, not used: years are
    counted as T / annualisation observations (the profile's annualisation already encodes its calendar).
    """
    r = _returns_array(returns)
    a = _check_annualisation(annualisation)
    if dates is not None:
        d = np.asarray(dates)
        if d.shape != r.shape:
            raise ValueError(f"dates {d.shape} and returns {r.shape} differ in shape")
        try:
            d = d.astype("datetime64[D]")
        except (TypeError, ValueError) as exc:
            raise ValueError("dates must be dates") from exc
        if d.size > 1 and not (np.diff(d) > np.timedelta64(0, "D")).all():
            raise ValueError("dates must be strictly ascending")
    return Metrics(
        total_return=float(np.prod(1.0 + r) - 1.0),
        cagr=cagr(r, a),
        volatility=volatility(r, a),
        sharpe=sharpe(r, a),
        sortino=sortino(r, a),
        max_drawdown=max_drawdown(r),
        calmar=calmar(r, a),
        avg_turnover=average_turnover(turnover),
        n_obs=int(r.size),
        annualisation=a,
    )


# ---------------------------------------------------------------------------------------------------------------
# Research metrics


def _is_nan(x: float | None) -> bool:
    return x is None or math.isnan(float(x))


def friction_decay(sharpe_with_costs: float, sharpe_without_costs: float) -> float:
    """1 − S_real / S_ideal: the share of the frictionless Sharpe lost to costs (may be < 0 or > 1; not clipped).

    NaN when S_ideal ≤ 0 (no edge before costs: the decay is undefined) or either input is NaN.
    """
    if _is_nan(sharpe_with_costs) or _is_nan(sharpe_without_costs) or not sharpe_without_costs > 0:
        return NAN
    return float(1.0 - sharpe_with_costs / sharpe_without_costs)


def sharpe_dispersion(
    window_sharpes: Sequence[float] | np.ndarray, window_rows: Sequence[int] | np.ndarray, annualisation: int
) -> float:
    """Dispersion of the per-window Sharpe ratios in units of their sampling noise (see the module docstring).

    Each window's annualised Sharpe Ŝ_k over n_k rows becomes its t-statistic Ŝ_k·√(n_k / A); the result is the
    sample std (ddof = 1) of those, NaN windows skipped, NaN with fewer than two."""
    s = np.asarray(window_sharpes, dtype=float).ravel()
    n = np.asarray(window_rows, dtype=float).ravel()
    if s.shape != n.shape:
        raise ValueError(f"{s.size} window Sharpe ratios but {n.size} window lengths")
    a = _check_annualisation(annualisation)
    keep = ~np.isnan(s)
    t = s[keep] * np.sqrt(n[keep] / a)
    if t.size < 2:
        return NAN
    return float(np.std(t, ddof=1))


def jaccard(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    sa, sb = set(a), set(b)
    union = sa | sb
    return 1.0 if not union else len(sa & sb) / len(union)


def selection_overlap(sets_by_window: Sequence[Iterable[Hashable]]) -> float:
    """Mean Jaccard similarity of consecutive windows' selected sets; NaN with fewer than two windows."""
    sets = [set(s) for s in sets_by_window]
    if len(sets) < 2:
        return NAN
    return float(np.mean([jaccard(a, b) for a, b in zip(sets, sets[1:])]))


def expected_shortfall(returns, level: float = 0.05) -> float:
    """Historical CVaR as a loss: −mean of the worst ⌈level · T⌉ daily returns (positive = a loss)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    r = _returns_array(returns)
    k = max(1, math.ceil(level * r.size - 1e-9))
    return float(-np.sort(r)[:k].mean())


def tail_risk_ratio(cell_returns, market_returns, level: float = 0.05) -> float:
    """max(CVaR ratio, max-drawdown ratio) of the cell's tail losses over the market's on the same days.

    Each ratio is cell loss / market loss (CVaR at `level` as a positive loss; |max drawdown|). 1.0 = as risky as
    the market. NaN when the market has no tail loss (CVaR ≤ 0) or no drawdown, so the comparison is undefined.
    """
    cell, market = _returns_array(cell_returns), _returns_array(market_returns)
    if cell.shape != market.shape:
        raise ValueError(f"cell {cell.shape} and market {market.shape} returns must cover the same days")
    market_cvar, market_mdd = expected_shortfall(market, level), -max_drawdown(market)
    if not market_cvar > 0 or not market_mdd > 0:
        return NAN
    return float(max(expected_shortfall(cell, level) / market_cvar, -max_drawdown(cell) / market_mdd))


def parity_gap(ann_return_a: float, ann_return_b: float) -> float:
    """|a − b|: the gap between two simulators' annual returns (CAGR) for the same cell; NaN if either is."""
    if _is_nan(ann_return_a) or _is_nan(ann_return_b):
        return NAN
    return float(abs(ann_return_a - ann_return_b))
