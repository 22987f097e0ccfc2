"""Values from the model states a run kept: EL2N, GraNd and TracIn.

All three read the model after some epochs (:meth:`TrainedRun.model_at`) and use the output layer
only (see :mod:`recexp.importance.representations`): the cross-entropy gradient of row ``i`` with
respect to the final linear layer's weights and bias is ``g_i = (p_i - y_i) ⊗ [h_i, 1]``, where
``p_i`` are the class probabilities, ``y_i`` the one-hot label and ``h_i`` the layer's input. The
last layer is the usual cheap stand-in for the full gradient (Pruthi et al. 2020 do the same for
TracIn at scale); its norm and inner products need no backward pass:

* ``||g_i|| = ||p_i - y_i|| * sqrt(||h_i||² + 1)``;
* ``<g_i, g_v> = <p_i - y_i, p_v - y_v> * (<h_i, h_v> + 1)``.

The loss is plain cross-entropy whatever the run optimised (class weights, focal loss, row weights
are left out), as for the per-epoch statistics.
"""

from __future__ import annotations

import math

import numpy as np

from recexp.errors import InvalidParameterError
from recexp.i18n import N_, _
from recexp.importance.base import HarmfulRows, ImportanceMethod, Progress
from recexp.importance.representations import last_layer_outputs, require_network, require_validation, residuals
from recexp.importance.run import TrainedRun
from recexp.models import TrainConfig
from recexp.params import Int, Optional

EPOCH = Optional(Int(1, None), help="A kept epoch whose model state to score with; empty = the earliest kept.")


def kept_epoch(run: TrainedRun, epoch: int | None, title: str) -> int:
    """``epoch`` when the run kept the model after it, the earliest kept epoch when ``epoch`` is None."""
    kept = run.kept_epochs
    if not kept:
        raise InvalidParameterError(
            _("{title}: run {run_id} kept no model states (it was trained with kept_states=0). Launch it again "
              "with kept states, or value it with the mean loss or "
              "forgetting events.").format(title=title, run_id=run.run_id))
    if epoch is None:
        return kept[0]
    if epoch not in kept:
        raise InvalidParameterError(
            _("{title}: parameter 'epoch' is {epoch}, but run {run_id} kept the model only after epoch(s) {values}. "
              "Set 'epoch' to one of them, or leave it empty for the earliest.").format(
              title=title, epoch=epoch, run_id=run.run_id, values=', '.join(map(str, kept))))
    return epoch


def with_bias(hidden: np.ndarray) -> np.ndarray:
    """``[h, 1]``: the last layer's input with the constant its bias multiplies."""
    return np.hstack([hidden, np.ones((len(hidden), 1))])


class EarlyModelScore(ImportanceMethod):
    """Base of the scores of one early model state (EL2N, GraNd): subclasses write ``_score`` only."""

    needs = "states"
    params = {"epoch": EPOCH}

    def __init__(self, epoch=None):
        self.epoch = epoch

    def _compute(self, run: TrainedRun, seed: int, progress: Progress) -> np.ndarray:
        require_network(run, self.title)
        epoch = kept_epoch(run, self.epoch, self.title)
        progress(0.0, _("scoring the training rows with the model after epoch {epoch}").format(epoch=epoch))
        _model, module = run.model_at(epoch)
        proba, hidden = last_layer_outputs(module, run.train)
        progress(1.0, _("done"))
        return -self._score(residuals(proba, run.labels), hidden)

    def _score(self, residual: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        """The score per row (higher = harder) from ``p - y`` and the last layer's input ``h``."""
        raise NotImplementedError


class EL2N(EarlyModelScore):
    """Minus the EL2N score: the L2 error of the early model's prediction (Paul et al., NeurIPS 2021).

    ``EL2N_i = || softmax(f(x_i)) - onehot(y_i) ||_2`` with the model kept after an early epoch. Rows
    still far from their label early in training are the hard, ambiguous or mislabelled ones; the
    paper averages over a few independent runs, here it is the one run's model.
    """

    title = "EL2N"
    summary = "Minus the early model's prediction error ||p - y||; rows far from their label early on score lowest."
    harmful = HarmfulRows(
        -math.sqrt(0.5), N_("share the early model got wrong (error > 0.71)"),
        N_("Values are minus the early model's error ||p - y||, so all are at most 0 (0: a sure, right "
        "prediction). Below -0.71 (an error above 1/sqrt(2)) the early model gave the row's own label less "
        "than 50%; with two classes, exactly those rows."))

    def _score(self, residual, hidden):
        return np.linalg.norm(residual, axis=1)


class GraNd(EarlyModelScore):
    """Minus the GraNd score: the norm of a row's loss gradient early in training (Paul et al. 2021).

    The gradient is taken with respect to the final linear layer (weights and bias), see the module
    docstring: ``||g_i|| = ||p_i - y_i|| * sqrt(||h_i||² + 1)``. It is EL2N scaled by the size of the
    row's representation, so rows the network maps far out weigh more.
    """

    title = "GraNd"
    summary = "Minus the norm of the row's last-layer loss gradient early in training; large gradients score lowest."
    harmful = HarmfulRows(
        None, N_("no threshold (read by rank)"),
        N_("Values are minus a gradient norm, so all are at most 0, and the norm's scale depends on the network: "
        "there is no threshold for a harmful row. Read the values by rank: the lowest have the largest gradients."))

    def _score(self, residual, hidden):
        return np.linalg.norm(residual, axis=1) * np.linalg.norm(with_bias(hidden), axis=1)


class TracIn(ImportanceMethod):
    """TracIn-CP (Pruthi et al., NeurIPS 2020): each row's influence on the validation loss.

    ``value_i = Σ_c lr · <g_i(c), Σ_v g_v(c)>`` over the kept model states ``c`` and the validation
    rows ``v``, with last-layer gradients (module docstring). A positive value means a gradient step
    on the row lowers the validation loss (a proponent); negative rows pull the model away from the
    validation data. ``lr`` is the run's learning rate; the optimiser is AdamW, whose steps are not
    ``lr · g``, so read the scale as relative (the ranking does not depend on it).
    """

    title = "TracIn"
    summary = ("Summed over kept model states: lr x (row's gradient . validation-loss gradient); "
               "harmful rows are negative.")
    harmful = HarmfulRows(
        0.0, N_("share that raise the validation loss"),
        N_("Above 0: a training step on the row lowered the validation loss (the row helps). Below 0: it raised the "
        "validation loss (the row hurts the model)."))
    needs = "states"
    params = {"checkpoints": Optional(Int(1, None), help="Use the first N kept model states; empty = all of them.")}

    def __init__(self, checkpoints=None):
        self.checkpoints = checkpoints

    def _compute(self, run: TrainedRun, seed: int, progress: Progress) -> np.ndarray:
        require_network(run, self.title)
        kept_epoch(run, None, self.title)                     # refuses a run without kept states
        require_validation(run, self.title)
        epochs = run.kept_epochs[: self.checkpoints]
        learning_rate = TrainConfig.from_dict(run.spec.train).learning_rate
        train_labels, valid_labels = run.labels, run.valid.y.astype(np.int64)
        values = np.zeros(len(run.train))
        for done, epoch in enumerate(epochs):
            progress(done / len(epochs), _("gradients after epoch {epoch} ({done} of {n_epochs} states)").format(
                                           epoch=epoch, done=done + 1, n_epochs=len(epochs)))
            _model, module = run.model_at(epoch)
            proba, hidden = last_layer_outputs(module, run.train)
            valid_proba, valid_hidden = last_layer_outputs(module, run.valid)
            # Σ_v g_v as a (K, d + 1) matrix G, then <g_i, G> = (p_i - y_i)ᵀ G [h_i, 1] for every row at once.
            valid_grad = residuals(valid_proba, valid_labels).T @ with_bias(valid_hidden)
            values += learning_rate * ((residuals(proba, train_labels) @ valid_grad) * with_bias(hidden)).sum(axis=1)
        progress(1.0, _("done"))
        if len(epochs) < len(run.kept_epochs):
            self.note(_("TracIn summed over the first {n_epochs} of {n_kept_epochs} kept model states.").format(
                        n_epochs=len(epochs), n_kept_epochs=len(run.kept_epochs)))
        return values
