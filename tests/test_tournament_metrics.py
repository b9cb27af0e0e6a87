"""Tournament metrics: agreement with QuantStats 0.0.86 to 1e-9, hand-computed cases, no clipping, edge cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from tsp_platform.tournament.metrics import (
    Metrics,
    cagr,
    expected_shortfall,
    friction_decay,
    jaccard,
    max_drawdown,
    parity_gap,
    performance,
    selection_overlap,
    sharpe_dispersion,
    tail_risk_ratio,
    sharpe as tsp_sharpe,
)

qs = pytest.importorskip("quantstats")

TOL = 1e-9


def close(ours: float, theirs: float) -> bool:
    """Equal to 1e-9 (relative for large values, e.g. the CAGR of a short explosive series); NaN only with NaN."""
    if math.isnan(theirs):
        return math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=TOL, abs_tol=TOL)


def series_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240601)
    normal = rng.normal(0.0004, 0.012, 600)
    fat = 0.01 * rng.standard_t(3, 500)
    wiped = rng.normal(0.001, 0.02, 300)
    wiped[120] = -1.0  # total loss; the cell is then liquidated and stays flat (SimulationResult contract)
    wiped[121:] = 0.0
    all_positive = rng.uniform(0.0, 0.02, 250)  # max < 1: QuantStats reads it as returns, not prices
    short = rng.normal(0.002, 0.015, 10)
    explosive = np.concatenate([rng.normal(0.0, 0.01, 20), [5.0], rng.normal(0.0, 0.01, 20)])  # a +500 % day
    return {
        "normal": normal,
        "fat_tailed": fat,
        "total_loss": wiped,
        "all_positive": all_positive,
        "short_10": short,
        "explosive": explosive,
    }


def as_qs_series(r: np.ndarray, annualisation: int) -> pd.Series:
    if annualisation == 252:
        index = pd.bdate_range("2021-01-04", periods=len(r))
    else:
        index = pd.date_range("2021-01-01", periods=len(r), freq="D")
    return pd.Series(r, index=index, name="cell")


CASES = series_cases()


@pytest.mark.parametrize("annualisation", [252, 365])
@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_quantstats(name: str, annualisation: int):
    r = CASES[name]
    s = as_qs_series(r, annualisation)
    m = performance(r, annualisation, dates=s.index.values.astype("datetime64[D]"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "total_return": float(qs.stats.comp(s)),
            "cagr": float(qs.stats.cagr(s, periods=annualisation)),
            "volatility": float(qs.stats.volatility(s, periods=annualisation)),
            "sharpe": float(qs.stats.sharpe(s, periods=annualisation)),
            "sortino": float(qs.stats.sortino(s, periods=annualisation)),
            "max_drawdown": float(qs.stats.max_drawdown(s)),
            "calmar": float(qs.stats.calmar(s, periods=annualisation)),
        }
    assert m.n_obs == len(r) and m.annualisation == annualisation
    for metric, theirs in expected.items():
        if name == "all_positive" and metric == "calmar":
            # no drawdown: QuantStats divides by 0 (inf); we report the ratio as undefined (NaN)
            assert m.max_drawdown == 0.0 and math.isinf(theirs) and math.isnan(m.calmar)
            continue
        assert close(getattr(m, metric), theirs), (name, annualisation, metric, getattr(m, metric), theirs)
    if name == "all_positive":
        assert math.isnan(m.sortino)  # no losing day: NaN, as QuantStats


def test_cagr_counts_years_by_observations_as_quantstats():
    # 126 sessions at A = 252 are half a year whatever the dates: +21 % total is a CAGR of 1.21² − 1
    r = np.zeros(126)
    r[0] = 0.21
    assert math.isclose(cagr(r, 252), 1.21**2 - 1, rel_tol=1e-12)
    assert math.isclose(cagr(np.full(365, 0.001), 365), 1.001**365 - 1, rel_tol=1e-12)


def test_max_drawdown_and_calmar_by_hand():
    r = np.array([0.10, -0.20, 0.05, -0.10, 0.30])
    # equity 1.1, 0.88, 0.924, 0.8316, 1.08108: peak 1.1, trough 0.8316
    m = performance(r, 252)
    assert math.isclose(m.max_drawdown, 0.8316 / 1.1 - 1, abs_tol=1e-15)
    assert math.isclose(m.max_drawdown, -0.244, abs_tol=1e-12)
    assert math.isclose(m.total_return, 0.08108, abs_tol=1e-12)
    expected_cagr = 1.08108 ** (252 / 5) - 1
    assert math.isclose(m.cagr, expected_cagr, rel_tol=1e-12)
    assert math.isclose(m.calmar, expected_cagr / 0.244, rel_tol=1e-12)
    # a first-day loss is a drawdown from the starting equity
    assert math.isclose(max_drawdown(np.array([-0.10, 0.05])), -0.10, abs_tol=1e-15)
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_no_clipping():
    # a +500 % day then flat for half a year (126 sessions at A = 252): CAGR (6)² − 1 = 35 (the old clip was 5)
    r = np.zeros(126)
    r[0] = 5.0
    m = performance(r, 252)
    assert math.isclose(m.total_return, 5.0, rel_tol=1e-12)
    assert math.isclose(m.cagr, 35.0, rel_tol=1e-12)
    # a volatility above 5 and a Sharpe far above 5 (the old clips) are reported as they are
    wild = np.resize([0.6, -0.4], 252)
    assert performance(wild, 252).volatility > 5
    steady = 0.01 + 1e-4 * np.resize([1.0, -1.0], 252)
    s = performance(steady, 252)
    assert math.isclose(s.sharpe, steady.mean() / steady.std(ddof=1) * math.sqrt(252), rel_tol=1e-12)
    assert s.sharpe > 1000
    # −40 % over 10 sessions is a true CAGR of 0.6^25.2 − 1 ≈ −0.9999974 (the old floor was −0.9999)
    crash = np.array([-0.10, 0.02] * 5)
    crash[-1] = 0.6 / np.prod(1 + crash[:-1]) - 1
    c = performance(crash, 252)
    assert math.isclose(c.total_return, -0.4, abs_tol=1e-12)
    assert math.isclose(c.cagr, 0.6**25.2 - 1, rel_tol=1e-12) and -1.0 < c.cagr < -0.9999  # below the old floor
    assert math.isclose(c.sharpe, crash.mean() / crash.std(ddof=1) * math.sqrt(252), rel_tol=1e-12)
    # a short window is annualised geometrically, never linearly
    ten = np.full(10, 0.01)
    assert math.isclose(cagr(ten, 252), 1.01**252 - 1, rel_tol=1e-12)  # ≈ 11.27, linear: 2.52


def test_total_loss_is_minus_one_never_nan():
    for r in ([0.1, -1.0, 0.0, 0.0], [-1.0], [0.05, 0.02, -1.0]):
        m = performance(np.array(r), 365)
        assert m.total_return == -1.0 and m.cagr == -1.0 and m.max_drawdown == -1.0 and m.calmar == -1.0


def test_edge_cases():
    flat = performance(np.zeros(20), 252)
    assert flat.volatility == 0.0 and math.isnan(flat.sharpe) and math.isnan(flat.sortino) and math.isnan(flat.calmar)
    assert flat.cagr == 0.0 and flat.max_drawdown == 0.0
    constant = performance(np.full(20, 0.001), 252)  # QuantStats: std ~1e-18 from rounding, Sharpe ~1e16
    assert constant.volatility == 0.0 and math.isnan(constant.sharpe)
    one = performance(np.array([-0.02]), 252)
    assert math.isnan(one.volatility) and math.isnan(one.sharpe)
    assert math.isclose(one.sortino, -math.sqrt(252)) and one.max_drawdown == pytest.approx(-0.02)
    with pytest.raises(ValueError, match="below −100 %"):
        performance(np.array([0.1, -1.5]), 252)
    with pytest.raises(ValueError, match="finite"):
        performance(np.array([0.1, np.nan]), 252)
    with pytest.raises(ValueError, match="empty"):
        performance(np.array([]), 252)
    with pytest.raises(ValueError, match="annualisation"):
        performance(np.array([0.01]), 0)
    with pytest.raises(ValueError, match="ascending"):
        performance(np.array([0.01, 0.02]), 252, dates=np.array(["2024-01-03", "2024-01-02"], dtype="datetime64[D]"))
    with pytest.raises(ValueError, match="shape"):
        performance(np.array([0.01, 0.02]), 252, dates=np.array(["2024-01-02"], dtype="datetime64[D]"))


def test_turnover():
    r = np.array([0.01, -0.01, 0.02])
    assert math.isnan(performance(r, 252).avg_turnover)
    assert performance(r, 252, turnover=np.array([])).avg_turnover == 0.0
    assert performance(r, 252, turnover=np.array([1.0, 0.2, 0.3])).avg_turnover == pytest.approx(0.5)
    with pytest.raises(ValueError):
        performance(r, 252, turnover=np.array([-0.1]))
    assert isinstance(performance(r, 252), Metrics)
    with pytest.raises(Exception):
        performance(r, 252).sharpe = 1.0  # frozen


def test_friction_decay():
    assert friction_decay(0.7, 1.0) == pytest.approx(0.3)
    assert friction_decay(1.2, 1.0) == pytest.approx(-0.2)  # not clipped
    assert friction_decay(-0.5, 1.0) == pytest.approx(1.5)
    assert math.isnan(friction_decay(0.5, 0.0)) and math.isnan(friction_decay(-1.0, -0.5))
    assert math.isnan(friction_decay(float("nan"), 1.0)) and math.isnan(friction_decay(0.5, float("nan")))


def test_sharpe_dispersion_is_the_std_of_window_t_statistics():
    # 63-row windows at A = 252: t = Sharpe · √(63/252) = Sharpe / 2
    assert sharpe_dispersion([1.0, 2.0, 3.0], [63, 63, 63], 252) == pytest.approx(0.5)
    assert sharpe_dispersion([1.0, float("nan"), 3.0], [63, 63, 63], 252) == pytest.approx(math.sqrt(2) / 2)
    assert math.isnan(sharpe_dispersion([1.0], [63], 252)) and math.isnan(sharpe_dispersion([], [], 252))
    with pytest.raises(ValueError, match="window lengths"):
        sharpe_dispersion([1.0, 2.0], [63], 252)


def test_sharpe_dispersion_gate_is_calibrated_on_noise():
    """A stable edge (true Sharpe 1 in every window, iid returns) scores ≈ 1 and passes the 1.5 gate almost always;
    an edge that flips between +6 and −6 annualised Sharpe from one window to the next fails it."""
    rng = np.random.default_rng(11)
    a, n, windows, trials = 252, 20, 25, 400
    vol = 0.01

    def dispersion(means):
        daily = means[:, None] + vol * rng.standard_normal((windows, n))
        sharpes = [tsp_sharpe(row, a) for row in daily]
        return sharpe_dispersion(sharpes, [n] * windows, a)

    stable = np.array([dispersion(np.full(windows, vol * 1.0 / math.sqrt(a))) for _ in range(trials)])
    assert abs(np.median(stable) - 1.0) < 0.1
    assert (stable <= 1.5).mean() > 0.98  # false-positive rate under 2 %
    flipping = np.where(np.arange(windows) % 2 == 0, 1.0, -1.0) * vol * 6.0 / math.sqrt(a)
    unstable = np.array([dispersion(flipping) for _ in range(trials)])
    assert (unstable > 1.5).mean() > 0.9


def test_selection_overlap():
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0
    windows = [{"a", "b", "c"}, {"a", "b", "d"}, {"e"}]
    assert selection_overlap(windows) == pytest.approx((2 / 4 + 0.0) / 2)
    assert math.isnan(selection_overlap([{"a"}]))


def test_tail_risk_ratio():
    market = np.array([0.01, -0.02, 0.01, -0.04, 0.02] * 4)  # 20 days: CVaR95 = worst 1 day = 4 %
    assert expected_shortfall(market) == pytest.approx(0.04)
    assert tail_risk_ratio(market, market) == pytest.approx(1.0)
    doubled = 2 * market
    ratio = tail_risk_ratio(doubled, market)
    mdd_ratio = max_drawdown(doubled) / max_drawdown(market)
    assert 1.9 < mdd_ratio < 2.0  # compounding: a 2× series draws down a little less than twice as deep here
    assert ratio == pytest.approx(2.0)  # so the CVaR ratio (8 % / 4 %) is the larger
    calmer = 0.5 * market
    assert tail_risk_ratio(calmer, market) < 1.0
    assert math.isnan(tail_risk_ratio(market, np.full(20, 0.01)))  # the market never lost: undefined
    with pytest.raises(ValueError, match="same days"):
        tail_risk_ratio(market[:10], market)


def test_parity_gap():
    assert parity_gap(0.12, 0.10) == pytest.approx(0.02)
    assert parity_gap(-0.05, 0.01) == pytest.approx(0.06)
    assert math.isnan(parity_gap(float("nan"), 0.1))
