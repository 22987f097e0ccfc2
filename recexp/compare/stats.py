"""The statistics of a comparison, with the training seed as the unit of replication.

Everything here is a pure function of per-seed scores (numpy arrays); nothing reads the run store, so
the verdict machinery can be checked on its own (``benchmarks/calibration.py`` runs A/A comparisons
through it).

The verdict on a strategy is a **paired t-test over per-seed differences of full-test scores**: seed
``s`` of the strategy is paired with seed ``s`` of the baseline (the same test rows, the same split),
the difference of their scores on the whole test split is one observation, and the mean of these
differences is tested against zero with ``n_pairs - 1`` degrees of freedom. Its interval is the
t-interval of that mean. This answers "does the strategy raise the score, over the run-to-run
variation of training", on this test split. Below :data:`MIN_SEEDS` pairs there is no p-value.

The p-values of the declared primary score are adjusted across the strategies compared with the
baseline by Holm's step-down method (:func:`holm`); every other score is exploratory and adjusted
across the table by Benjamini-Hochberg (:func:`benjamini_hochberg`). :func:`probability_of_improvement`
is the Mann-Whitney probability that a random seed of the strategy beats a random seed of the baseline
(as the rliable library reports it), with Newcombe's score interval, which stays honest at 3 seeds.
:func:`minimum_detectable_difference` and :func:`seeds_needed` give the power of a paired t-test from the observed seed-to-seed spread.

Example
-------
>>> strategy, baseline = np.array([.71, .73, .72, .74]), np.array([.70, .71, .71, .72])
>>> test = paired_seed_test(strategy, baseline)
>>> round(test.mean, 3), test.status
(0.015, 'ok')
>>> holm([0.01, 0.04, 0.03]).round(2).tolist()
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, stats

#: The fewest paired seeds that give a p-value and a significance mark.
MIN_SEEDS = 3
#: Power the "smallest detectable difference" and "seeds needed" are computed for.
POWER = 0.8
#: The most seeds :func:`seeds_needed` looks at before it says "more than this".
MAX_SEEDS = 500

#: Status of a paired test: a p-value was computed.
OK = "ok"
#: Fewer than :data:`MIN_SEEDS` pairs: no p-value.
TOO_FEW_SEEDS = "too_few_seeds"
#: Every per-seed difference is zero: nothing to test.
IDENTICAL = "identical"
#: Every per-seed difference is the same non-zero number: no seed-to-seed spread to test against.
CONSTANT = "constant"


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Two-sided t-interval of the mean of the finite ``values``; ``nan`` bounds below two values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def seed_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of per-seed scores: ``(mean, low, high)``; bounds ``nan`` below 2 seeds."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else math.nan
    return (mean, *t_interval(values, level))


@dataclass(frozen=True)
class SeedTest:
    """A paired test over seeds: the per-seed differences (strategy - baseline) and what they say.

    ``p_value`` is ``nan`` unless ``status`` is :data:`OK`; ``low``/``high`` bound the mean difference
    (t-interval, ``nan`` below two pairs or with zero spread); ``sd`` is the standard deviation of the
    per-seed differences (``nan`` below two pairs).
    """

    differences: np.ndarray
    mean: float
    low: float
    high: float
    sd: float
    p_value: float
    status: str

    @property
    def n_pairs(self) -> int:
        return len(self.differences)


def paired_seed_test(scores, baseline, level: float = 0.95, min_seeds: int = MIN_SEEDS) -> SeedTest:
    """Paired t-test over seeds of ``scores - baseline`` (arrays aligned by seed; non-finite pairs dropped).

    Parameters
    ----------
    scores, baseline : array of float
        Per seed: the full-test score of the strategy's run and of the baseline's run of that seed.
    level : float
        Coverage of the interval of the mean difference.
    min_seeds : int
        Fewest pairs that give a p-value.

    Returns
    -------
    SeedTest
    """
    scores, baseline = np.asarray(scores, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    keep = np.isfinite(scores) & np.isfinite(baseline)
    d = scores[keep] - baseline[keep]
    if not len(d):
        return SeedTest(d, math.nan, math.nan, math.nan, math.nan, math.nan, TOO_FEW_SEEDS)
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
    spread = float(np.ptp(d))
    if len(d) > 1 and spread <= 1e-12 * max(1.0, abs(mean)):
        status = IDENTICAL if abs(mean) <= 1e-12 else CONSTANT
        return SeedTest(d, mean, math.nan, math.nan, 0.0, math.nan, status if len(d) >= min_seeds else TOO_FEW_SEEDS)
    low, high = t_interval(d, level)
    if len(d) < min_seeds:
        return SeedTest(d, mean, low, high, sd, math.nan, TOO_FEW_SEEDS)
    t = mean / (sd / math.sqrt(len(d)))
    p = float(2 * stats.t.sf(abs(t), len(d) - 1))
    return SeedTest(d, mean, low, high, sd, p, OK)


def _adjusted(p_values, adjust) -> np.ndarray:
    """``adjust`` applied to the finite p-values only; ``nan`` entries stay ``nan``, out of the family."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = adjust(p[finite])
    return adjusted


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control); ``nan`` entries stay out of the family."""
    return _adjusted(p_values, _holm)


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false-discovery rate; scipy's ``false_discovery_control``)."""
    return _adjusted(p_values, lambda p: stats.false_discovery_control(p, method="bh"))


def improvement_interval(probability: float, m: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Newcombe's score interval (2006, Method 5) for a Mann-Whitney probability from ``m`` and ``n`` seeds.

    The limits are the two probabilities ``p`` at which the observed one lies ``z`` standard errors away,
    with the Hanley-McNeil variance at ``p`` and both sample sizes replaced by their mean ``(m + n) / 2``
    (Newcombe, Statistics in Medicine 25: 559-573, "Confidence intervals for an effect size measure
    based on the Mann-Whitney statistic. Part 2"). Like Wilson's interval for a proportion it never
    collapses: with 3 seeds per arm and every pair in favour it is [0.56, 1.00], not [1.00, 1.00].
    """
    z = stats.norm.ppf((1 + level) / 2)
    size = (m + n) / 2 - 1

    def sd(p: float) -> float:
        return math.sqrt(max(p * (1 - p) * (1 + size * (1 - p) / (2 - p) + size * p / (1 + p)) / (m * n), 0.0))

    edge = 1e-12                              # at 0 or 1 the observed value is itself a (trivial) root: skip it
    low = 0.0 if probability <= 0 else optimize.brentq(lambda p: probability - p - z * sd(p), 0.0,
                                                       min(probability, 1 - edge))
    high = 1.0 if probability >= 1 else optimize.brentq(lambda p: probability - p + z * sd(p),
                                                        max(probability, edge), 1.0)
    return float(low), float(high)


def probability_of_improvement(scores, baseline, higher_is_better: bool = True,
                               level: float = 0.95) -> tuple[float, float, float]:
    """P(a random seed of the strategy beats a random seed of the baseline), with a score interval.

    The Mann-Whitney U statistic over every (strategy seed, baseline seed) pair divided by the number of
    pairs (ties count one half), as rliable's ``probability_of_improvement``. The interval is Newcombe's
    (:func:`improvement_interval`), not rliable's stratified bootstrap: with the 3-5 seeds of a typical
    comparison a bootstrap of seeds collapses to a point ("1.00 [1.00, 1.00]" whenever every pair agrees,
    and 55-85% coverage of the true probability at 3 seeds, ``tests/unit/compare/test_stats.py``). Returns
    ``(probability, low, high)``; ``nan`` without scores.
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if not len(x) or not len(y):
        return math.nan, math.nan, math.nan
    if not higher_is_better:
        x, y = -x, -y
    greater = (x[:, None] > y[None, :]).mean()
    point = float(greater + 0.5 * (x[:, None] == y[None, :]).mean())
    return (point, *improvement_interval(point, len(x), len(y), level))


def effect_size(test: SeedTest) -> float:
    """Standardised paired effect d_z: the mean per-seed difference over the spread of the differences.

    ``nan`` below two pairs or with zero spread (there is no spread to measure the difference against).
    """
    if not np.isfinite(test.sd) or test.sd <= 0:
        return math.nan
    return test.mean / test.sd


def power(difference: float, sd: float, n_pairs: int, alpha: float) -> float:
    """Power of a two-sided paired t-test with ``n_pairs`` pairs to detect a true mean ``difference``."""
    if n_pairs < 2 or not sd > 0:
        return math.nan
    df = n_pairs - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = abs(difference) / sd * math.sqrt(n_pairs)

    # The noncentral t as (Z + shift) / sqrt(V / df), V ~ chi2(df), integrated over V (scipy's nct returns
    # nan for some arguments).
    def rejected(v: float) -> float:
        bound = critical * math.sqrt(v / df)
        return stats.chi2.pdf(v, df) * (stats.norm.sf(bound - shift) + stats.norm.cdf(-bound - shift))

    value, _ = integrate.quad(rejected, stats.chi2.ppf(1e-12, df), stats.chi2.isf(1e-12, df), limit=200)
    return float(min(1.0, max(0.0, value)))


def minimum_detectable_difference(sd: float, n_pairs: int, alpha: float, target: float = POWER) -> float:
    """The smallest true difference a paired t-test over ``n_pairs`` seeds detects with power ``target``."""
    if n_pairs < 2 or not sd > 0:
        return math.nan
    upper = sd
    while power(upper, sd, n_pairs, alpha) < target:
        upper *= 2
    return float(optimize.brentq(lambda d: power(d, sd, n_pairs, alpha) - target, 0.0, upper, xtol=sd * 1e-6))


def seeds_needed(difference: float, sd: float, alpha: float, target: float = POWER,
                 most: int = MAX_SEEDS) -> int | None:
    """Fewest paired seeds (at least :data:`MIN_SEEDS`) that detect ``difference`` with power ``target``.

    ``None`` when even ``most`` seeds do not (or the spread is unknown).
    """
    if not sd > 0 or not difference or power(difference, sd, most, alpha) < target:
        return None
    low, high = MIN_SEEDS - 1, most                        # power(low) < target <= power(high); power grows with n
    if power(difference, sd, MIN_SEEDS, alpha) >= target:
        return MIN_SEEDS
    while high - low > 1:
        middle = (low + high) // 2
        if power(difference, sd, middle, alpha) >= target:
            high = middle
        else:
            low = middle
    return high


def pooled_sd(tests: list[SeedTest]) -> tuple[float, int]:
    """Pooled standard deviation of per-seed differences over several paired tests, and its degrees of freedom."""
    parts = [(t.n_pairs - 1, t.sd) for t in tests if t.n_pairs > 1 and np.isfinite(t.sd)]
    df = sum(d for d, _ in parts)
    if not df:
        return math.nan, 0
    return math.sqrt(sum(d * s * s for d, s in parts) / df), df


def bootstrap_p_value(differences) -> float:
    """Two-sided p-value of "no difference" from bootstrap replicates of a difference (the row bootstrap)."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return math.nan
    below = (np.count_nonzero(d <= 0) + 1) / (len(d) + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (len(d) + 1)
    return float(min(1.0, 2 * min(below, above)))


__all__ = ["MIN_SEEDS", "POWER", "OK", "TOO_FEW_SEEDS", "IDENTICAL", "CONSTANT", "SeedTest", "t_interval",
           "seed_interval", "paired_seed_test", "holm", "benjamini_hochberg", "probability_of_improvement",
           "improvement_interval", "effect_size", "power", "minimum_detectable_difference", "seeds_needed", "pooled_sd", "bootstrap_p_value"]
