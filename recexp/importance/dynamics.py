"""Values from the training dynamics every run records: per-epoch loss and correctness of each row."""

from __future__ import annotations

import math

import numpy as np

from recexp.errors import InvalidParameterError
from recexp.i18n import N_, _
from recexp.importance.base import HarmfulRows, ImportanceMethod, Progress
from recexp.importance.run import TrainedRun
from recexp.params import Int, Optional


def first_epochs(run: TrainedRun, name: str, epochs: int | None, title: str) -> np.ndarray:
    """The ``rows x epochs`` matrix of statistic ``name`` over the first ``epochs`` epochs (all when None)."""
    matrix = run.matrix(name)
    if epochs is not None and epochs > matrix.shape[1]:
        raise InvalidParameterError(
            _("{title}: parameter 'epochs' is {epochs}, but run {run_id} trained for {shape} epoch(s). Set "
              "'epochs' to at most {shape}, or leave it empty for all epochs.").format(
              title=title, epochs=epochs, run_id=run.run_id, shape=matrix.shape[1]))
    return matrix[:, :epochs]


class MeanLoss(ImportanceMethod):
    """Minus the mean training loss of each row over the first epochs.

    Rows the model keeps getting wrong (mislabelled, ambiguous, or off the real data) have a high
    loss and so a low value. The loss is the plain cross-entropy of the row when its minibatch was
    seen, whatever loss the run optimised.
    """

    title = "Mean training loss"
    task_kinds = ("classification", "ranking")          # per-sequence loss dynamics on the next-item task
    summary = "Minus the average loss of each row over training; hard or mislabelled rows score lowest."
    harmful = HarmfulRows(
        -math.log(2), N_("share the model fits badly (loss > ln 2)"),
        N_("Values are minus the mean cross-entropy loss, so all are at most 0 and a share below 0 would count "
        "every row. A row counts as fitted badly when its mean loss is above ln 2 = 0.69 (value below -0.69): "
        "the model gave the row's own label a probability whose geometric mean over the epochs is under 50%."))
    params = {"epochs": Optional(Int(1, None), help="Average over the first N epochs; empty = all epochs.")}

    def __init__(self, epochs=None):
        self.epochs = epochs

    def _compute(self, run: TrainedRun, seed: int, progress: Progress) -> np.ndarray:
        return -first_epochs(run, "loss", self.epochs, self.title).mean(axis=1)


def forgetting_events(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count forgetting events per row of a ``rows x epochs`` boolean matrix (Toneva et al. 2019).

    A forgetting event is a row going from correctly classified at one epoch to misclassified at the
    next. Returns ``(events, ever_learned)``.

    >>> forgetting_events(np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=bool))
    (array([2, 0, 0]), array([ True, False,  True]))
    """
    correct = np.asarray(correct, dtype=bool)
    events = (correct[:, :-1] & ~correct[:, 1:]).sum(axis=1)
    return events, correct.any(axis=1)


class ForgettingEvents(ImportanceMethod):
    """Minus the number of forgetting events of each row (Toneva et al., ICLR 2019).

    Rows never classified correctly count as forgotten more often than any learned row can be
    (``epochs // 2 + 1`` events), as in the paper. Unforgettable rows (value 0) are the ones the
    model learned once and kept; they are also the ones that can be dropped with least harm.
    """

    title = "Forgetting events"
    task_kinds = ("classification", "ranking")          # forgetting of the top-1 item on the next-item task
    summary = "Minus how often a row flipped from right to wrong between epochs; never-learned rows score lowest."
    harmful = HarmfulRows(
        0.0, N_("share forgotten or never learned"),
        N_("Values are minus the number of forgetting events: 0 for a row learned and kept; below 0 for a row "
        "forgotten at least once (right at one epoch, wrong at the next) or never classified correctly."))
    params = {"epochs": Optional(Int(2, None), help="Count over the first N epochs; empty = all epochs.")}

    def __init__(self, epochs=None):
        self.epochs = epochs

    def _compute(self, run: TrainedRun, seed: int, progress: Progress) -> np.ndarray:
        correct = first_epochs(run, "correct", self.epochs, self.title) > 0.5
        if correct.shape[1] < 2:
            raise InvalidParameterError(
                _("{title}: run {run_id} trained for a single epoch, so nothing can be forgotten. Value it with "
                  "the mean loss instead, or train for at least 2 "
                  "epochs.").format(title=self.title, run_id=run.run_id))
        events, learned = forgetting_events(correct)
        never = int((~learned).sum())
        if never:
            self.note(_("{never:,} rows were never classified correctly; they count as forgotten {shape} times.").format(
                        never=never, shape=correct.shape[1] // 2 + 1))
        return -np.where(learned, events, correct.shape[1] // 2 + 1).astype(np.float64)
