"""A finished run, opened for sample importance: the rows it trained on and the model along the way.

Every run stores, among its artifacts (see :func:`recexp.jobs.execute`):

* ``train_rows.parquet``: the training frame after the strategy, in training order, with ``source_row``
  (the dataset position each row came from: itself for a real row, its seed row for a new one);
* ``sample_stats.parquet``: loss and correctness of every training row after every epoch;
* ``states/epoch_NNN.pt``: the model after some epochs (epoch 1 and evenly spaced after it);
* ``model.pt``: the model kept (best validation epoch).

:meth:`TrainedRun.load` rebuilds the dataset from the run spec (for the schema and the validation
split, which valuation methods score against; the test split is never used here) and checks that
the data still matches the run's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, Dataset
from recexp.errors import InvalidDataError
from recexp.i18n import _
from recexp.spec import RunSpec, prepare_data
from recexp.runs import STATES_FOLDER
from recexp.models import Model, load_checkpoint
from recexp.runs import FINISHED, RunStore

#: Column of ``train_rows.parquet`` with the dataset position each training row came from.
SOURCE_ROW = "source_row"


@dataclass
class TrainedRun:
    """Everything an importance method may use about one finished run.

    Attributes
    ----------
    run_id : str
    spec : RunSpec
    train : Dataset
        The rows the model was trained on (after the strategy), in training order; its frame has
        ``is_synthetic`` and ``sample_weight``. Row ``i`` here is row ``i`` of ``sample_stats``.
    valid : Dataset
        The run's validation split (real rows only, never touched by a strategy).
    source_rows : numpy.ndarray
        Dataset position of every training row (real rows: their own; new rows: their seed row).
    sample_stats : pandas.DataFrame
        ``row, epoch, label, is_synthetic, loss, correct`` for every training row and epoch.
    folder : pathlib.Path
        The run's artifact folder.
    best_epoch : int
        The epoch whose weights ``model.pt`` holds.
    """

    run_id: str
    spec: RunSpec
    train: Dataset
    valid: Dataset
    source_rows: np.ndarray
    sample_stats: pd.DataFrame
    folder: Path
    best_epoch: int

    @classmethod
    def load(cls, store: RunStore, run_id: str, data: tuple | None = None) -> TrainedRun:
        """Open a finished run of ``store``; ``data`` is ``prepare_data(spec)`` when the caller has it.

        Raises :class:`InvalidDataError` with a sentence when the run did not finish, predates the
        artifacts importance needs, or its data changed since.
        """
        run = store.get_run(run_id)
        if run.status != FINISHED:
            raise InvalidDataError(
                _("Run {run_id} is {status}, not finished; sample importance needs a finished run. Pick a "
                  "finished run, or wait for this one.").format(run_id=run_id, status=run.status))
        folder = store.artifact_dir(run_id)
        missing = [name for name in ("train_rows.parquet", "sample_stats.parquet") if not (folder / name).exists()]
        if missing and run.info.get("trained_from") == "disk":
            raise InvalidDataError(_(
                "Run {run_id} trained from a dataset on disk, larger than memory, whose training rows are not kept "
                "per run; sample importance needs them in memory. Build the dataset with sampling (keep a share of "
                "users, --sample-users, or of the majority class, --negative-rate) so its training split fits, and "
                "launch the run again.").format(run_id=run_id))
        if missing:
            raise InvalidDataError(
                _("Run {run_id} has no {missing} among its artifacts (it was trained by an older recexp, or with "
                  "per-sample statistics switched off). Launch it again to value its rows.").format(
                  run_id=run_id, missing=' or '.join(missing)))
        spec = RunSpec.from_dict(run.spec)
        dataset, split = data if data is not None else prepare_data(spec)
        frame = store.read_table(run_id, "train_rows")
        source_rows = frame.pop(SOURCE_ROW).to_numpy(np.int64)
        train = replace(dataset, frame=frame)
        stats = store.read_table(run_id, "sample_stats")
        final = run.metrics or {}
        best_epoch = int(final.get("best_epoch", stats["epoch"].max()))
        return cls(run_id=run_id, spec=spec, train=train, valid=dataset.subset(split.valid),
                   source_rows=source_rows, sample_stats=stats, folder=folder, best_epoch=best_epoch)

    # --- what the rows are --------------------------------------------------------------------------

    @property
    def labels(self) -> np.ndarray:
        """Label code of every training row."""
        return self.train.frame[LABEL].to_numpy(np.int64)

    @property
    def is_synthetic(self) -> np.ndarray:
        """Whether each training row was made by the strategy."""
        return self.train.frame[IS_SYNTHETIC].to_numpy(bool)

    @property
    def sample_weight(self) -> np.ndarray:
        return self.train.frame[SAMPLE_WEIGHT].to_numpy(np.float64)

    def matrix(self, name: str) -> np.ndarray:
        """``rows x epochs`` array of a per-epoch statistic (``"loss"`` or ``"correct"``) of ``sample_stats``."""
        stats = self.sample_stats
        epochs = int(stats["epoch"].max())
        out = np.full((len(self.train), epochs), np.nan)
        out[stats["row"].to_numpy(), stats["epoch"].to_numpy() - 1] = stats[name].to_numpy(np.float64)
        return out

    # --- the model along the way --------------------------------------------------------------------

    @property
    def kept_epochs(self) -> list[int]:
        """Epochs whose model state was kept (ascending); empty for runs trained with ``kept_states=0``."""
        return sorted(int(p.stem.split("_")[1]) for p in (self.folder / STATES_FOLDER).glob("epoch_*.pt"))

    def model_at(self, epoch: int | None = None) -> tuple[Model, nn.Module]:
        """``(model, module)`` after ``epoch`` (a kept epoch), or the kept best model when ``None``.

        The module is on the CPU, in eval mode.
        """
        path = self.folder / ("model.pt" if epoch is None else f"{STATES_FOLDER}/epoch_{epoch:03d}.pt")
        if not path.exists():
            kept = ", ".join(map(str, self.kept_epochs)) or "none"
            raise InvalidDataError(
                _("Run {run_id} kept no model state for epoch {epoch} (kept epochs: {kept}). Choose a kept epoch.").format(
                  run_id=self.run_id, epoch=epoch, kept=kept))
        model, module, _config = load_checkpoint(path)
        return model, module
