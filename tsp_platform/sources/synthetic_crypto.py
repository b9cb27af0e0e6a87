"""A deterministic SYNTHETIC crypto market: the embedded offline default for crypto profiles.

Nothing here is real. Every base is an invented `SYN*` ticker on the invented `SYNTH` venue, every
symbol row carries `is_synthetic=True` and a description starting with "SYNTHETIC —", and every bar
carries `source="synthetic_crypto"`.

Model (all vectorised over assets; the only per-day loop is the scalar regime chain):

* Calendar: 24/7, one daily bar per calendar day from `start` to `end` inclusive. The last date is
  `end` (see `latest_date`), except for the one symbol with an injected `stale` fault.
* 40 non-stable bases in 5 correlated clusters (the `sector` column: Synthetic L1 / L2 / DeFi /
  Meme / Infra). Daily log return of base i in cluster k:

      r[t, i] = drift[regime_t] + alpha_i + vol_mult[regime_t] * (beta_i m_t + gamma_i c[t, k] + s_i e[t, i])

  with m, c, e unit-variance Student-t shocks (df=3.5, clipped at 8 sd) and log returns clipped to
  [-0.6, 0.5] so no clean bar ever moves more than +65 % close to close.
* Regimes: a 3-state Markov chain (calm / volatile / crash) with different vol multipliers and
  drifts; exposed as `SyntheticMarket.regimes`.
* 3 stablecoin bases (SYNUSD, SYNDLR, SYNCSH) priced 1 + a small mean-reverting deviation.
* Pairs: every base has a USDT pair; some also USDC and FDUSD pairs, priced off the same
  underlying with a tiny independent basis noise and with lower volumes (USDT is the most liquid).
* Bars: open = previous close within a few bp, high >= max(open, close), low <= min(open, close),
  volume in BASE units, lognormal, correlated with |return| and with the regime.

Injected faults (fixed symbols, dates counted back from `end`, all in the last 100 days so any
lookback of >= 120 days as of `end` sees them; one row each in `SyntheticMarket.faults`, `date` =
first affected day):

* toxic_spike        SYNTH:SYNMCUSDT  end-45: close = 7 x previous close (+600 %), reversal next day
* gap                SYNTH:SYNDFUSDT  end-75 .. end-73: 3 daily bars absent
* stale              SYNTH:SYNDAUSDT  last bar end-10; end-9 .. end absent (`date` = end-9)
* flat_closes        SYNTH:SYNRHUSDT  end-100 .. end-96: 5 identical closes, o=h=l=c, volume 0
* ohlc_inconsistent  SYNTH:SYNIAUSDT  end-30: high < close

Every other symbol is clean: full calendar, consistent OHLC, positive volume, no return > 500 %,
no repeated closes. Output is bit-for-bit identical for the same seed and span (numpy PCG64 streams
spawned from one SeedSequence); the symbol reference table does not depend on the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from tsp_platform.config.models import MarketDataSource
from tsp_platform.core.vocabulary import AssetClass, Calendar
from tsp_platform.lakehouse.schema import SYMBOLS
from tsp_platform.sources.base import OHLCV_SCHEMA, conform

SOURCE = MarketDataSource.SYNTHETIC_CRYPTO.value  # "synthetic_crypto"
SYNTHETIC_LABEL = "SYNTHETIC"
EXCHANGE = "SYNTH"
CALENDAR = Calendar.ALWAYS.value  # "24/7"
ASSET_CLASS = AssetClass.CRYPTO.value
QUOTES = ("USDT", "USDC", "FDUSD")
DEFAULT_SEED = 7
DEFAULT_START = date(2020, 1, 1)
DEFAULT_END = date(2022, 12, 31)
MIN_DAYS = 180  # the fault schedule needs ~100 days before `end` plus some clean history

SYMBOLS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String,
    "exchange": pl.String,
    "ticker": pl.String,
    "base": pl.String,
    "quote": pl.String,
    "asset_class": pl.String,
    "sector": pl.String,
    "industry": pl.String,
    "currency": pl.String,
    "calendar": pl.String,
    "tick_size": pl.Float64,
    "lot_size": pl.Float64,
    "is_stablecoin": pl.Boolean,
    "is_synthetic": pl.Boolean,
    "source": pl.String,
    "description": pl.String,
}
if list(SYMBOLS_SCHEMA) != SYMBOLS.column_names:  # pragma: no cover - import-time contract check
    raise RuntimeError("synthetic_crypto.SYMBOLS_SCHEMA drifted from lakehouse SYMBOLS")

FAULTS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String,
    "kind": pl.String,
    "date": pl.Date,
    "detail": pl.String,
}
REGIMES_SCHEMA: dict[str, pl.DataType] = {"date": pl.Date, "regime": pl.String}

# ---------------------------------------------------------------------------------------------
# Universe (seed independent)
# ---------------------------------------------------------------------------------------------

# code, sector, industry, idiosyncratic daily vol, beta range, price decade (log10) per member
_CLUSTERS: tuple[tuple[str, str, str, float, tuple[float, float], tuple[int, ...]], ...] = (
    ("L", "Synthetic L1", "Smart-contract platform", 0.016, (0.80, 1.10), (4, 3, 2, 1, 1, 0, 0, -1)),
    ("R", "Synthetic L2", "Rollup / scaling", 0.020, (0.95, 1.25), (1, 0, 0, 0, -1, -1, -1, -2)),
    ("D", "Synthetic DeFi", "DEX / lending protocol", 0.022, (1.00, 1.30), (2, 2, 1, 1, 0, 0, -1, -1)),
    ("M", "Synthetic Meme", "Meme / community token", 0.034, (1.10, 1.50), (-1, -2, -3, -4, -5, -5, -6, -6)),
    ("I", "Synthetic Infra", "Oracle / storage / infrastructure", 0.020, (0.85, 1.15), (1, 1, 0, 0, 0, -1, -1, -2)),
)
_MEMBER_LETTERS = "ABCDEFGH"
_USDC_MEMBERS = 4  # members 0..3 of each cluster also trade against USDC
_FDUSD_MEMBERS = 2  # members 0..1 also against FDUSD
# stablecoin base -> extra quotes beyond USDT
_STABLES: tuple[tuple[str, tuple[str, ...]], ...] = (("SYNUSD", ("USDC",)), ("SYNDLR", ()), ("SYNCSH", ("FDUSD",)))
_STABLE_SECTOR, _STABLE_INDUSTRY = "Synthetic Stablecoin", "USD stablecoin"

# Regime chain: calm / volatile / crash
REGIME_NAMES = ("calm", "volatile", "crash")
_TRANSITIONS = np.array(
    [
        [0.975, 0.022, 0.003],
        [0.050, 0.935, 0.015],
        [0.040, 0.100, 0.860],
    ]
)
_VOL_MULT = np.array([1.0, 1.8, 3.0])
_DRIFT = np.array([0.0015, -0.0005, -0.0120])
_VOLUME_BOOST = np.array([0.0, 0.3, 0.8])  # log-volume uplift per regime

_T_DF = 3.5
_SHOCK_CLIP = 8.0
_LOGRET_CLIP = (-0.6, 0.5)
_MARKET_VOL, _CLUSTER_VOL = 0.025, 0.020
_OPEN_NOISE = 3e-4  # open vs previous close (log sd), clipped at 3 sd
_BASIS_NOISE = 2e-4  # non-USDT quote vs the underlying (log sd)
_RANGE_SCALE = 0.35  # intraday excursion beyond the body, in units of daily vol
_STABLE_SD, _STABLE_PHI, _STABLE_BAND = 3e-4, 0.7, 0.005

# Faults: (kind, symbol, offset of the first affected day counted back from `end`)
FAULT_KINDS = ("toxic_spike", "gap", "stale", "flat_closes", "ohlc_inconsistent")
SPIKE_FACTOR = 7.0  # close = 7 x previous close: a +600 % close-to-close return
GAP_DAYS = 3
STALE_DAYS = 10  # bars stop STALE_DAYS days before `end`
FLAT_DAYS = 5
_FAULT_PLAN: tuple[tuple[str, str, int], ...] = (
    ("toxic_spike", f"{EXCHANGE}:SYNMCUSDT", 45),
    ("gap", f"{EXCHANGE}:SYNDFUSDT", 75),
    ("stale", f"{EXCHANGE}:SYNDAUSDT", STALE_DAYS - 1),
    ("flat_closes", f"{EXCHANGE}:SYNRHUSDT", 100),
    ("ohlc_inconsistent", f"{EXCHANGE}:SYNIAUSDT", 30),
)
FAULT_SYMBOLS: dict[str, str] = {kind: symbol for kind, symbol, _ in _FAULT_PLAN}


@dataclass(frozen=True)
class _Base:
    name: str
    sector: str
    industry: str
    cluster: int  # -1 for stablecoins
    decade: int
    quotes: tuple[str, ...]
    idio_vol: float
    beta_range: tuple[float, float]

    @property
    def is_stablecoin(self) -> bool:
        return self.cluster < 0


def _universe() -> tuple[_Base, ...]:
    bases = []
    for k, (code, sector, industry, idio, beta_range, decades) in enumerate(_CLUSTERS):
        for j, decade in enumerate(decades):
            quotes = ("USDT",) + (("USDC",) if j < _USDC_MEMBERS else ())
            quotes += ("FDUSD",) if j < _FDUSD_MEMBERS else ()
            name = f"SYN{code}{_MEMBER_LETTERS[j]}"
            bases.append(_Base(name, sector, industry, k, decade, quotes, idio, beta_range))
    for name, extra in _STABLES:
        bases.append(_Base(name, _STABLE_SECTOR, _STABLE_INDUSTRY, -1, 0, ("USDT", *extra), 0.0, (0.0, 0.0)))
    return tuple(bases)


_BASES = _universe()


def _symbol_rows() -> list[dict]:
    rows = []
    for base in _BASES:
        if base.is_stablecoin:
            tick, lot = 1e-4, 1.0
            what = f"synthetic USD stablecoin {base.name}, priced about 1 {{quote}}"
        else:
            tick = 10.0 ** (base.decade - 4)
            lot = float(np.clip(10.0 ** (-(base.decade + 1)), 1e-6, 1e6))
            what = f"synthetic {base.industry.lower()} token {base.name} ({base.sector})"
        for quote in base.quotes:
            ticker = f"{base.name}{quote}"
            rows.append(
                {
                    "symbol": f"{EXCHANGE}:{ticker}",
                    "exchange": EXCHANGE,
                    "ticker": ticker,
                    "base": base.name,
                    "quote": quote,
                    "asset_class": ASSET_CLASS,
                    "sector": base.sector,
                    "industry": base.industry,
                    "currency": quote,
                    "calendar": CALENDAR,
                    "tick_size": tick,
                    "lot_size": lot,
                    "is_stablecoin": base.is_stablecoin,
                    "is_synthetic": True,
                    "source": SOURCE,
                    "description": (
                        f"{SYNTHETIC_LABEL} — not a real asset or market: "
                        + what.format(quote=quote)
                        + f", quoted in {quote} on the simulated {EXCHANGE} venue ({SOURCE})."
                    ),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------
# Market
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """A generated market. `symbols` follows lakehouse SYMBOLS, `ohlcv` follows OHLCV_SCHEMA."""

    symbols: pl.DataFrame
    ohlcv: pl.DataFrame
    faults: pl.DataFrame  # symbol, kind, date (first affected day), detail
    regimes: pl.DataFrame  # date, regime (calm / volatile / crash) of the market factor
    seed: int
    start: date
    end: date


def latest_date(market: SyntheticMarket) -> date:
    """The last calendar day of the market (= the `end` it was generated with)."""
    return market.end


def clean_symbols(market: SyntheticMarket) -> list[str]:
    """Symbols with no injected fault, sorted."""
    faulted = set(market.faults["symbol"].to_list())
    return sorted(s for s in market.symbols["symbol"].to_list() if s not in faulted)


def _unit_t(rng: np.random.Generator, size) -> np.ndarray:
    """Student-t shocks scaled to unit variance and clipped at _SHOCK_CLIP sd."""
    draws = rng.standard_t(_T_DF, size=size) * np.sqrt((_T_DF - 2.0) / _T_DF)
    return np.clip(draws, -_SHOCK_CLIP, _SHOCK_CLIP)


def _regime_path(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Markov chain over calm / volatile / crash, starting calm (scalar loop over days only)."""
    cumulative = np.cumsum(_TRANSITIONS, axis=1).tolist()
    draws = rng.random(n_days).tolist()
    path = [0] * n_days
    state = 0
    for t in range(1, n_days):
        row = cumulative[state]
        u = draws[t]
        state = 0 if u < row[0] else (1 if u < row[1] else 2)
        path[t] = state
    return np.asarray(path, dtype=np.int64)


def _ar1(noise: np.ndarray, phi: float, lags: int = 64) -> np.ndarray:
    """AR(1) along axis 0 via its truncated MA(inf) form (phi**64 is negligible), vectorised."""
    n_days = noise.shape[0]
    weights = phi ** np.arange(lags)
    padded = np.concatenate([np.zeros((lags - 1, noise.shape[1])), noise])
    windows = np.lib.stride_tricks.sliding_window_view(padded, lags, axis=0)  # (T, n, lags), oldest first
    return (windows[:n_days] * weights[::-1]).sum(axis=-1)  # elementwise, no BLAS: reproducible


def generate_synthetic_crypto(
    seed: int = DEFAULT_SEED, start: date = DEFAULT_START, end: date = DEFAULT_END
) -> SyntheticMarket:
    """Generate the SYNTHETIC market for every calendar day in [start, end]; deterministic by seed."""
    n_days = (end - start).days + 1
    if n_days < MIN_DAYS:
        raise ValueError(f"synthetic crypto market needs at least {MIN_DAYS} days, got {start}..{end}")

    streams = np.random.SeedSequence(seed).spawn(8)
    rng_regime, rng_params, rng_factor, rng_idio, rng_stable, rng_basis, rng_bar, rng_volume = (
        np.random.default_rng(s) for s in streams
    )

    crypto = [b for b in _BASES if not b.is_stablecoin]
    stables = [b for b in _BASES if b.is_stablecoin]
    n_crypto, n_stable, n_clusters = len(crypto), len(stables), len(_CLUSTERS)
    cluster_of = np.array([b.cluster for b in crypto])

    # --- per-base parameters
    lo = np.array([b.beta_range[0] for b in crypto])
    hi = np.array([b.beta_range[1] for b in crypto])
    beta = lo + (hi - lo) * rng_params.random(n_crypto)
    gamma = rng_params.uniform(0.8, 1.2, n_crypto)
    idio_vol = np.array([b.idio_vol for b in crypto]) * rng_params.uniform(0.8, 1.25, n_crypto)
    alpha = rng_params.normal(0.0, 3e-4, n_crypto)
    decade = np.array([b.decade for b in _BASES], dtype=float)
    p0 = 10.0 ** (decade + rng_params.random(len(_BASES)))
    p0[n_crypto:] = 1.0
    # daily notional (USD) of the USDT pair: bigger for L1s and for higher-priced bases
    log_notional = np.log(10.0) * (6.3 + 0.35 * np.clip(decade, -2, 4) + rng_params.uniform(-0.5, 0.5, len(_BASES)))
    log_notional[n_crypto:] = np.log(10.0) * rng_params.uniform(8.5, 9.3, n_stable)

    # --- regimes and returns of the non-stable bases (T, n_crypto)
    regime = _regime_path(rng_regime, n_days)
    market = _unit_t(rng_factor, n_days) * _MARKET_VOL
    cluster = _unit_t(rng_factor, (n_days, n_clusters)) * _CLUSTER_VOL
    idio = _unit_t(rng_idio, (n_days, n_crypto)) * idio_vol
    shock = market[:, None] * beta + cluster[:, cluster_of] * gamma + idio
    logret = _DRIFT[regime][:, None] + alpha + _VOL_MULT[regime][:, None] * shock
    logret = np.clip(logret, *_LOGRET_CLIP)
    base_close = np.empty((n_days, len(_BASES)))
    base_close[:, :n_crypto] = p0[:n_crypto] * np.exp(np.cumsum(logret, axis=0))

    # --- stablecoins: 1 + mean-reverting deviation inside a +-50 bp band
    deviation = _ar1(rng_stable.normal(0.0, _STABLE_SD, (n_days, n_stable)), _STABLE_PHI)
    base_close[:, n_crypto:] = 1.0 + np.clip(deviation, -_STABLE_BAND, _STABLE_BAND)

    base_prev = np.vstack([p0[None, :], base_close[:-1]])
    base_absret = np.abs(np.log(base_close / base_prev))
    crypto_vol = np.sqrt((beta * _MARKET_VOL) ** 2 + (gamma * _CLUSTER_VOL) ** 2 + idio_vol**2)
    calm_vol = np.concatenate([crypto_vol, np.full(n_stable, _STABLE_SD)])
    day_vol = _VOL_MULT[regime][:, None] * calm_vol  # (T, n_bases)

    # --- pairs
    symbol_rows = _symbol_rows()
    base_index = {b.name: i for i, b in enumerate(_BASES)}
    pair_base = np.array([base_index[r["base"]] for r in symbol_rows])
    pair_quote = np.array([QUOTES.index(r["quote"]) for r in symbol_rows])
    symbols = [r["symbol"] for r in symbol_rows]
    column = {s: p for p, s in enumerate(symbols)}
    n_pairs = len(symbols)

    basis = rng_basis.normal(0.0, _BASIS_NOISE, (n_days + 1, n_pairs)) * (pair_quote > 0)
    close = base_close[:, pair_base] * np.exp(basis[1:])
    first_prev = p0[pair_base] * np.exp(basis[0])

    # --- faults on closes (before bars are built, so opens/highs/lows stay consistent around them)
    last = n_days - 1
    fault_rows: list[dict] = []
    keep = np.ones((n_days, n_pairs), dtype=bool)
    flat: tuple[int, slice] | None = None
    bad_bar: tuple[int, int] | None = None

    def day(t: int) -> date:
        return start + timedelta(days=t)

    for kind, symbol, offset in _FAULT_PLAN:
        p, t = column[symbol], last - offset
        if kind == "toxic_spike":
            close[t, p] = close[t - 1, p] * SPIKE_FACTOR
            detail = (
                f"close {SPIKE_FACTOR:g}x the previous close (+{(SPIKE_FACTOR - 1) * 100:.0f} %) on {day(t)}, "
                f"reverting on {day(t + 1)}"
            )
        elif kind == "gap":
            keep[t : t + GAP_DAYS, p] = False
            detail = f"{GAP_DAYS} consecutive daily bars absent: {day(t)}..{day(t + GAP_DAYS - 1)}"
        elif kind == "stale":
            keep[t:, p] = False
            detail = f"bars stop {STALE_DAYS} days before end: last bar {day(t - 1)}, absent {day(t)}..{day(last)}"
        elif kind == "flat_closes":
            rows = slice(t, t + FLAT_DAYS)
            close[rows, p] = close[t, p]
            flat = (p, rows)
            detail = f"{FLAT_DAYS} identical closes with volume 0: {day(t)}..{day(t + FLAT_DAYS - 1)}"
        elif kind == "ohlc_inconsistent":
            bad_bar = (t, p)
            detail = f"high below close on {day(t)}"
        else:  # pragma: no cover - _FAULT_PLAN is static
            raise AssertionError(kind)
        fault_rows.append({"symbol": symbol, "kind": kind, "date": day(t), "detail": detail})

    # --- bars
    prev_close = np.vstack([first_prev[None, :], close[:-1]])
    open_noise = np.clip(rng_bar.normal(0.0, _OPEN_NOISE, (n_days, n_pairs)), -3 * _OPEN_NOISE, 3 * _OPEN_NOISE)
    open_ = prev_close * np.exp(open_noise)
    excursion = _RANGE_SCALE * day_vol[:, pair_base]
    high = np.maximum(open_, close) * np.exp(np.abs(rng_bar.standard_normal((n_days, n_pairs))) * excursion)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng_bar.standard_normal((n_days, n_pairs))) * excursion)

    # volume: USDT most liquid, USDC 10-30 %, FDUSD 3-12 % of it; log-volume rises with |return| and regime
    quote_share = np.select(
        [pair_quote == 0, pair_quote == 1],
        [0.0, np.log(rng_volume.uniform(0.10, 0.30, n_pairs))],
        np.log(rng_volume.uniform(0.03, 0.12, n_pairs)),
    )
    z = np.minimum(base_absret / calm_vol, 8.0)  # (T, n_bases)
    common = rng_volume.normal(0.0, 0.25, (n_days, len(_BASES)))
    own = rng_volume.normal(0.0, 0.20, (n_days, n_pairs))
    log_volume = (
        log_notional[pair_base]
        + quote_share
        + 0.35 * z[:, pair_base]
        + _VOLUME_BOOST[regime][:, None]
        + common[:, pair_base]
        + own
    )
    volume = np.exp(log_volume) / close  # base units

    if flat is not None:
        p, rows = flat
        open_[rows, p] = high[rows, p] = low[rows, p] = close[rows, p]
        volume[rows, p] = 0.0
    if bad_bar is not None:
        t, p = bad_bar
        high[t, p] = close[t, p] * 0.99
        low[t, p] = min(low[t, p], high[t, p])
        fault_rows[[r["kind"] for r in fault_rows].index("ohlc_inconsistent")]["detail"] += (
            f": high {high[t, p]:.8g} < close {close[t, p]:.8g}"
        )

    # --- long frames, sorted by (symbol, date)
    order = np.argsort(np.array(symbols), kind="stable")
    dates = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    mask = keep[:, order].T.ravel()

    def flat_values(matrix: np.ndarray) -> np.ndarray:
        return matrix[:, order].T.ravel()[mask]

    ohlcv = pl.DataFrame(
        {
            "symbol": np.repeat(np.array(symbols)[order], n_days)[mask],
            "date": pl.Series(np.tile(dates, n_pairs)[mask]).cast(pl.Date),
            "open": flat_values(open_),
            "high": flat_values(high),
            "low": flat_values(low),
            "close": flat_values(close),
            "volume": flat_values(volume),
            "source": SOURCE,
        }
    )
    ohlcv = conform(ohlcv, OHLCV_SCHEMA, SOURCE)

    symbol_frame = pl.DataFrame(symbol_rows, schema=SYMBOLS_SCHEMA).sort("symbol")
    faults = pl.DataFrame(fault_rows, schema=FAULTS_SCHEMA).sort("date", "symbol")
    regimes = pl.DataFrame(
        {"date": pl.Series(dates).cast(pl.Date), "regime": np.array(REGIME_NAMES)[regime]}, schema=REGIMES_SCHEMA
    )
    return SyntheticMarket(
        symbols=symbol_frame, ohlcv=ohlcv, faults=faults, regimes=regimes, seed=seed, start=start, end=end
    )
