"""What fitting a generator produced, as plain data: training history, quality report, imputation comparison.

:func:`describe_fit` gathers, after a generator is fitted and has generated rows, everything an analyst
looks at to judge it: the per-epoch losses and quality scores with the checkpoint kept (neural
generators), the :func:`~recexp.synthesis.quality.quality_report` of generated rows against real
ones, and (when missing values were imputed) the comparison with mean/mode imputation from
:func:`~recexp.synthesis.impute.imputation_report`. The result holds DataFrames, dicts and numbers
only (no torch modules), so it pickles, caches and serialises.

>>> from recexp.synthesis.report import describe_fit
>>> generator = VAE(epochs=5, random_state=0).fit(train.frame, train.schema)            # doctest: +SKIP
>>> rows = generator.sample(2000)                                                       # doctest: +SKIP
>>> report = describe_fit(generator, train.frame, rows, train.schema)                   # doctest: +SKIP
>>> report.scores()                                                                     # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recexp.dataset import IS_SYNTHETIC, LABEL, FeatureSchema
from recexp.i18n import N_, _, format_decimal
from recexp.synthesis.base import Generator
from recexp.synthesis.privacy import ID_POLICIES, PRIVACY_SCOPE
from recexp.synthesis.quality import QualityReport, QualityScores, jsonable, quality_report

#: Real rows (at most) a strategy scores its generator against; the same number of rows is generated.
REPORT_ROWS = 2000

#: One line per score: how to read it.
SCORE_HELP = {
    N_("Quality score"): N_("Mean of column shapes and pair trends (SDMetrics' quality score). 1 is identical; "
                            "above 0.8 is good."),
    N_("Column shapes"): N_("Each column's distribution, real vs synthetic (1 - KS statistic or 1 - total variation). "
                            "1 is identical."),
    N_("Pair trends"): N_("Correlations / contingency tables of every column pair preserved. 1 is identical."),
    N_("Detection AUC"): N_("How well a logistic regression tells synthetic rows from real ones. 0.5 (a coin flip) is "
                            "best; near 1 they are easy to tell apart."),
    N_("ML efficacy (F1 synthetic / real)"): N_("Macro-F1 on held-out real rows of a model trained on synthetic rows "
                                                "only, over one trained on real rows. 1 means as useful as real data."),
    N_("ML efficacy (F1 real + synthetic / real)"): N_("Macro-F1 of a model trained on real and synthetic rows, over one "
                                                       "trained on real rows only. Above 1: the synthetic rows help."),
    N_("DCR ratio"): N_("Median distance of a synthetic row to its closest real row, over the same for real rows. "
                        "About 1 or more is safe; well below 1 suggests memorised rows."),
    N_("Exact copies (share)"): N_("Share of synthetic rows equal to a real training row in every scored column. "
                                   "0 is best."),
    N_("Membership inference AUC"): N_("How well an attacker tells training rows from held-out real rows by their "
                                       "distance to the closest synthetic row. 0.5 (a coin flip) is no leak; near 1 "
                                       "the synthetic rows give the training rows away."),
}

#: Membership-inference AUC below this reads as no measurable leak; from :data:`MIA_LEAK` on as a leak.
MIA_NO_LEAK = 0.55
MIA_LEAK = 0.65


def membership_reading(auc: float | None) -> str:
    """One sentence that reads a membership-inference AUC (see :data:`SCORE_HELP`)."""
    if auc is None or auc != auc:
        return _("No membership-inference score: it needs held-out real rows the generator never saw.")
    shown = format_decimal(auc, 3)
    if auc < MIA_NO_LEAK:
        return _("Membership inference AUC {auc}: an attacker does no better than a coin flip at telling training "
                 "rows from held-out ones, so no measurable leak.").format(auc=shown)
    if auc < MIA_LEAK:
        return _("Membership inference AUC {auc}: a weak signal; synthetic rows sit somewhat closer to training rows "
                 "than to held-out ones.").format(auc=shown)
    return _("Membership inference AUC {auc}: training rows are recognisable from the synthetic rows; lower epsilon "
             "or fewer epochs would leak less.").format(auc=shown)


@dataclass
class SynthesisReport:
    """A fitted generator's training history, the quality of its rows and the imputation comparison.

    Attributes
    ----------
    generator : str
        The generator's class name.
    params : dict
        Its parameters.
    history : DataFrame or None
        One row per epoch (``epoch``, the losses, ``quality`` where scored, ``seconds``); ``None`` for
        generators fitted in closed form (the Gaussian copula).
    best_epoch : int or None
        The epoch whose checkpoint was kept.
    best_quality : float or None
        Its quality score during training.
    quality : QualityReport or None
        Generated rows scored against real ones; ``None`` when not requested.
    real, synthetic : DataFrame or None
        The rows that were scored (model columns and ``label``), for per-column histograms.
    imputation : dict or None
        :func:`~recexp.synthesis.impute.imputation_report` plus ``filled_cells``, when missing values of
        the real rows were imputed.
    fit_seconds : float
        Wall time of ``generator.fit``.
    held_out : str or None
        What the machine-learning efficacy models were tested on and the privacy distances compared with:
        held-out real rows the generator never saw, or (without them) part of its own training rows.
        ``None`` when there is no quality report.
    differential_privacy : dict or None
        The generator's ``privacy_``: requested and spent epsilon (Opacus' accountant), delta, noise
        multiplier, steps...; ``None`` when it trained without differential privacy.
    ids : str or None
        The id policy of generated rows (``"new"`` or ``"hash"``; ``"none"`` when the rows have no id
        columns; :data:`~recexp.synthesis.privacy.ID_POLICIES`).
    """

    generator: str
    params: dict[str, Any]
    history: pd.DataFrame | None
    best_epoch: int | None
    best_quality: float | None
    quality: QualityReport | None
    real: pd.DataFrame | None
    synthetic: pd.DataFrame | None
    imputation: dict[str, Any] | None
    fit_seconds: float
    held_out: str | None = None
    differential_privacy: dict[str, Any] | None = None
    ids: str | None = None

    @property
    def epsilon(self) -> float | None:
        """Epsilon spent by DP-SGD training (Opacus' accountant); ``None`` without differential privacy."""
        return None if self.differential_privacy is None else float(self.differential_privacy["epsilon"])

    @property
    def membership_inference_auc(self) -> float:
        """The quality report's membership-inference AUC (``nan`` without one or without held-out rows)."""
        return self.quality.membership_inference_auc if self.quality is not None else math.nan

    def privacy_notes(self) -> list[str]:
        """Sentences on what protects the generated rows: the id policy and, under DP, what epsilon covers."""
        notes = []
        if self.ids is not None:
            notes.append(_("Ids of generated rows: {policy}.").format(policy=_(ID_POLICIES[self.ids])))
        if self.differential_privacy is not None:
            notes.append(_(PRIVACY_SCOPE))
        return notes

    @property
    def columns(self) -> list[str]:
        """The scored columns (numeric, categorical, then the label), in report order."""
        if self.quality is None:
            return []
        return list(self.quality.numeric) + list(self.quality.categorical)

    def scores(self) -> pd.DataFrame:
        """One row per score (see :data:`SCORE_HELP`): all classes, the minority class, and how to read it."""
        if self.quality is None:
            return pd.DataFrame(columns=[N_("all classes"), N_("minority class"), N_("what good looks like")])
        q = self.quality
        efficacy = q.efficacy or {}
        rows = {}
        for name in SCORE_HELP:
            rows[name] = {"all classes": _score(name, q.overall, efficacy, minority=False),
                          "minority class": _score(name, q.minority, efficacy, minority=True),
                          "what good looks like": SCORE_HELP[name]}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "score"
        if q.minority_class is not None:
            table = table.rename(columns={"minority class": _("minority class ({name})").format(
                name=q.minority_class)})
        return table

    def efficacy_table(self) -> pd.DataFrame:
        """Scores on held-out real rows of a model trained on real rows, on synthetic rows, and on both."""
        efficacy = self.quality.efficacy if self.quality is not None else {}
        names = {"real": "trained on real", "synthetic": "trained on synthetic", "augmented": "trained on both"}
        rows = {label: {metric: efficacy[key].get(metric, math.nan) for metric in _EFFICACY_METRICS}
                for key, label in names.items() if efficacy.get(key)}
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(_EFFICACY_METRICS))

    def imputation_summary(self) -> pd.DataFrame:
        """Mean error and distribution similarity per method (generator, mean/mode) on hidden observed cells."""
        summary = (self.imputation or {}).get("summary") or {}
        names = {"generator": f"{self.generator} (conditional sampling)", "mean_mode": "mean / mode"}
        return pd.DataFrame.from_dict({names.get(k, k): v for k, v in summary.items()}, orient="index",
                                      columns=["error", "shape"])

    def imputation_table(self) -> pd.DataFrame:
        """Per column: error and distribution similarity of generator vs mean/mode imputation."""
        if not self.imputation or not self.imputation.get("columns"):
            return pd.DataFrame(columns=["column", "type", "method", "error", "shape", "cells"])
        return pd.DataFrame(self.imputation["columns"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``generator``, ``params``, ``fit_seconds``, ``history`` (records), ``best_epoch``,
        ``best_quality``, ``imputation``, ``held_out``, ``quality``, and the privacy figures: ``epsilon``
        (spent; ``None`` without differential privacy), ``epsilon_requested``, ``delta``,
        ``differential_privacy`` (the accountant's figures), ``membership_inference_auc``, ``ids`` (the
        id policy) and ``privacy_notes`` (NaN written as ``None``)."""
        dp = self.differential_privacy or {}
        return jsonable({
            "epsilon": self.epsilon, "epsilon_requested": dp.get("epsilon_requested"), "delta": dp.get("delta"),
            "membership_inference_auc": self.membership_inference_auc, "ids": self.ids,
            "differential_privacy": self.differential_privacy, "privacy_notes": self.privacy_notes(),
            "generator": self.generator, "params": self.params, "fit_seconds": self.fit_seconds,
            "history": self.history.to_dict(orient="records") if self.history is not None else None,
            "best_epoch": self.best_epoch, "best_quality": self.best_quality,
            "imputation": self.imputation, "held_out": self.held_out,
            "quality": self.quality.to_dict() if self.quality is not None else None,
        })

_EFFICACY_METRICS = ("f1_macro", "balanced_accuracy", "minority_f1", "minority_recall")
_EFFICACY_MODEL = {"ML efficacy (F1 synthetic / real)": "synthetic",
                   "ML efficacy (F1 real + synthetic / real)": "augmented"}


def _ratio(numerator: float | None, denominator: float | None) -> float:
    if numerator is None or denominator is None or not denominator or math.isnan(denominator):
        return math.nan
    return float(numerator) / float(denominator)


def _score(name: str, scores: QualityScores | None, efficacy: dict[str, Any], minority: bool) -> float:
    if name.startswith("ML efficacy"):
        real = efficacy.get("real")
        other = efficacy.get(_EFFICACY_MODEL[name])
        if not real or not other:
            return math.nan
        key = "minority_f1" if minority else "f1_macro"
        return _ratio(other.get(key), real.get(key))
    if scores is None:
        return math.nan
    if name == "Quality score":
        return float(scores.quality)
    if name == "Column shapes":
        return _mean(scores.column_shapes["score"])
    if name == "Pair trends":
        return _mean(scores.pair_trends["score"])
    if name == "Detection AUC":
        return float(scores.detection["auc"])
    if name == "DCR ratio":
        return float(scores.privacy["dcr_ratio"])
    if name == "Exact copies (share)":
        return float(scores.privacy["exact_copy_share"])
    if name == "Membership inference AUC":
        return float(scores.privacy.get("membership_inference_auc", math.nan))
    raise AssertionError(name)


def _mean(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else math.nan


def describe_fit(generator: Generator, real: pd.DataFrame | None, synthetic: pd.DataFrame | None,
                 schema: FeatureSchema, *, real_test: pd.DataFrame | None = None, minority: str | None = None,
                 imputation: dict[str, Any] | None = None, fit_seconds: float = math.nan,
                 detector: str = "logistic", random_state: int = 0) -> SynthesisReport:
    """Everything a fitted generator leaves to judge it by, as a :class:`SynthesisReport`.

    Parameters
    ----------
    generator : Generator
        Fitted; its ``history_``, ``best_epoch_`` and ``best_quality_`` are read where it has them.
    real : DataFrame or None
        Real training rows the generated rows are scored against (after imputation, where it was
        done; rows flagged ``is_synthetic`` are dropped). ``None`` skips the quality report.
    synthetic : DataFrame or None
        Generated rows (the schema's numeric and categorical columns and ``label``).
    schema : FeatureSchema
    real_test : DataFrame, optional
        Real rows the generator never saw, e.g. the validation split (never the test split): the
        efficacy test set and the privacy baseline (see :func:`~recexp.synthesis.quality.quality_report`).
        Without them both fall back on the training rows, and ``held_out`` says so.
    minority : str, optional
        The class scored alone; default: the one with the fewest rows in ``real``.
    imputation : dict, optional
        The imputation comparison to carry along.
    fit_seconds : float
        Wall time of the fit, for the record.
    detector : {"logistic", "gbm"}
    random_state : int
        Seeds the report's subsampling, folds and classifiers.
    """
    quality, held_out = None, None
    if real_test is not None and len(real_test) == 0:        # e.g. a split without validation rows
        real_test = None
    kept: dict[str, pd.DataFrame | None] = {"real": None, "synthetic": None}
    if real is not None and synthetic is not None:
        if IS_SYNTHETIC in real.columns:
            real = real.loc[~real[IS_SYNTHETIC].to_numpy(dtype=bool)]
        quality = quality_report(real, synthetic, schema, real_test=real_test, minority=minority, detector=detector,
                                 random_state=random_state)
        columns = list(schema.numeric) + list(schema.categorical) + [LABEL]
        kept = {"real": real[columns].reset_index(drop=True), "synthetic": synthetic[columns].reset_index(drop=True)}
        held_out = (_("{rows:,} held-out real rows the generator never saw").format(rows=len(real_test))
                    if real_test is not None else
                    _("part of the real training rows (the generator saw them; no held-out rows were given)"))
    history = getattr(generator, "history_", None)
    best_quality = getattr(generator, "best_quality_", None)
    return SynthesisReport(
        generator=type(generator).__name__, params=generator.get_params(),
        history=history.copy() if history is not None else None,
        best_epoch=int(generator.best_epoch_) if hasattr(generator, "best_epoch_") else None,
        best_quality=float(best_quality) if best_quality is not None and np.isfinite(best_quality) else None,
        quality=quality, real=kept["real"], synthetic=kept["synthetic"], imputation=imputation,
        fit_seconds=float(fit_seconds), held_out=held_out,
        differential_privacy=getattr(generator, "privacy_", None),
        ids=generator.ids if getattr(generator, "id_columns_", None) else "none")


__all__ = ["MIA_LEAK", "MIA_NO_LEAK", "REPORT_ROWS", "SCORE_HELP", "SynthesisReport", "describe_fit",
           "membership_reading"]
