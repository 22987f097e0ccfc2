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

#: Title -> (Optuna's plot function, complete trials it needs).
FIGURES = {
    "Optimisation history": (ov.plot_optimization_history, 1),
    "Validation score per epoch (pruned trials stop early)": (ov.plot_intermediate_values, 1),
    "Parallel coordinates": (ov.plot_parallel_coordinate, 2),
    "Parameter importances": (ov.plot_param_importances, 3),
    "Slices": (ov.plot_slice, 1),
}


def study_figures(study: optuna.Study) -> dict[str, go.Figure | str]:
    """Title -> figure, or the sentence saying why it cannot be drawn yet."""
    complete = len(study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]))
    figures: dict[str, go.Figure | str] = {}
    for title, (plot, needed) in FIGURES.items():
        if complete < needed:
            figures[title] = f"Drawn once {needed} trial{'s' if needed > 1 else ''} finished ({complete} so far)."
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")                   # Optuna's experimental-feature notices
                figure = plot(study)
        except (ValueError, RuntimeError) as error:              # e.g. every finished trial has the same value
            figures[title] = f"Not drawn: {error}"
            continue
        figure.update_layout(title=None, height=380, margin=dict(l=10, r=10, t=30, b=10))
        figures[title] = figure
    return figures


__all__ = ["FIGURES", "study_figures"]
