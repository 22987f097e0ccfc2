"""Optuna's own plotly figures of a study: optimisation history, parallel coordinates, parameter
importances, slices and the per-epoch validation scores pruning acted on.

Each figure needs enough finished trials; :func:`study_figures` gives a sentence instead of a figure
where the study cannot draw it yet.
"""

from __future__ import annotations

import warnings

import optuna
import optuna.visualization as ov
import plotly.graph_objects as go

from recexp.i18n import N_, _, format_integer, ngettext

#: Title (translated where shown) -> (Optuna's plot function, complete trials it needs).
FIGURES = {
    N_("Optimisation history"): (ov.plot_optimization_history, 1),
    N_("Validation score per epoch (pruned trials stop early)"): (ov.plot_intermediate_values, 1),
    N_("Parallel coordinates"): (ov.plot_parallel_coordinate, 2),
    N_("Parameter importances"): (ov.plot_param_importances, 3),
    N_("Slices"): (ov.plot_slice, 1),
}
#: The words Optuna writes on its figures (axis titles, trace names, colour bars), translated where shown.
OPTUNA_TEXTS = {text: text for text in (
    N_("Objective Value"), N_("Best Value"), N_("Trial"), N_("Infeasible Trial"), N_("Feasible Trial"),
    N_("Intermediate Value"), N_("Step"), N_("Hyperparameter"), N_("Hyperparameter Importance"),
    N_("Importance for Objective Value"))}


def _in_language(figure: go.Figure) -> go.Figure:
    """``figure`` with Optuna's own words (:data:`OPTUNA_TEXTS`) in the current language."""
    def said(text):
        return _(text) if text in OPTUNA_TEXTS else text

    for name in [key for key in figure.layout.to_plotly_json() if key.startswith(("xaxis", "yaxis"))]:
        axis = figure.layout[name]
        axis.title.text = said(axis.title.text)
        if axis.ticktext:                                   # the parallel coordinates' column names
            axis.ticktext = [said(text) for text in axis.ticktext]
    for trace in figure.data:
        if getattr(trace, "name", None):
            trace.name = said(trace.name)
        colorbar = getattr(getattr(trace, "marker", None), "colorbar", None) or getattr(trace, "colorbar", None)
        if colorbar is not None and colorbar.title.text:
            colorbar.title.text = said(colorbar.title.text)
    return figure


def study_figures(study: optuna.Study) -> dict[str, go.Figure | str]:
    """Title (English, as in :data:`FIGURES`) -> figure, or the sentence saying why it cannot be drawn yet (in the
    current language)."""
    complete = len(study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]))
    figures: dict[str, go.Figure | str] = {}
    for title, (plot, needed) in FIGURES.items():
        if complete < needed:
            figures[title] = ngettext("Drawn once {needed} trial finished ({complete} so far).",
                                      "Drawn once {needed} trials finished ({complete} so far).", needed).format(
                needed=format_integer(needed), complete=format_integer(complete))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")                   # Optuna's experimental-feature notices
                figure = plot(study)
        except (ValueError, RuntimeError) as error:              # e.g. every finished trial has the same value
            figures[title] = _("Not drawn: {error}").format(error=error)
            continue
        figure.update_layout(title=None, height=380, margin=dict(l=10, r=10, t=30, b=10))
        figures[title] = _in_language(figure)
    return figures


__all__ = ["FIGURES", "OPTUNA_TEXTS", "study_figures"]
