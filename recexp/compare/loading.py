"""Loading the runs of a comparison from the run store: their test (and validation) predictions.

:func:`select_runs` finds the finished runs of an experiment (or the given ids); :func:`load_predictions`
reads each run's test predictions, groups runs by strategy (the A/A arm apart), keeps the newest of two
runs with the same strategy and seed, leaves out a run whose artifacts cannot be read (with a note), and
checks that every run was scored on the very same test rows. A run scored with test-time augmentation
(:mod:`recexp.tta`) also forms the arm ``"<its group> + TTA"`` from its TTA predictions, paired by seed
with its own plain predictions and the baseline's. :func:`sample_losses` and
:func:`sample_importance` read per-row values of the compared runs for the charts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recexp.dataset import LABEL, SAMPLE_WEIGHT, TIME, USER
from recexp.consistency import consistency_line
from recexp.errors import InvalidDataError, InvalidParameterError, JobError, RecexpError
from recexp.i18n import _
from recexp.importance import TrainedRun, cached_values_path, get_method, run_importance
from recexp.metrics import next_item_row_scores
from recexp.models import evaluate, load_checkpoint
from recexp.runs import FINISHED, Run, RunStore
from recexp.spec import AA_SEED_OFFSET, RunSpec, arm_name, prepare_data
from recexp.tasks import task_kind

if TYPE_CHECKING:
    from recexp.compare.comparison import Comparison

#: Suffix of the arm formed by the test-time-augmented predictions of a group's runs.
TTA_ARM = " + TTA"

#: What reading a run's artifacts can raise besides recexp's own errors (a file gone, a damaged Parquet file).
_UNREADABLE = (OSError, ValueError, KeyError)


@dataclass
class RunPredictions:
    """One finished run with its test predictions (and validation predictions where needed)."""

    run: Run
    group: str                                 # the strategy (and model / parameters when they differ)
    classes: tuple[str, ...]
    rows: np.ndarray                           # test row positions in the dataset
    y: np.ndarray                              # test label codes
    proba: np.ndarray                          # (n_test, K)
    valid_y: np.ndarray | None = None
    valid_proba: np.ndarray | None = None
    queries: np.ndarray | None = None          # per test row: user (and anchor) id, for top-K ranking
    tta: bool = False                          # the run's test-time-augmented predictions (its "+ TTA" arm)
    #: per test row its ``sample_weight`` (a test split down-sampled at build time; scores count rows by it)
    weight: np.ndarray | None = None
    #: a next-item (ranking) run: per test row its scores (hr@K, ndcg@K, mrr, popularity@10), from the target's
    #: rank among all items; ``proba`` is then empty (no per-item probabilities are stored)
    row_scores: pd.DataFrame | None = None

    @property
    def ranking(self) -> bool:
        """Whether the run ranks items (next-item task) rather than predicting classes."""
        return self.row_scores is not None

    @property
    def key(self) -> str:
        """Unique among the compared items: the run id, with ``:tta`` for the run's TTA predictions."""
        return f"{self.run.id}:tta" if self.tta else self.run.id

    @property
    def strategy(self) -> str:
        return str(self.run.spec.get("strategy", "?"))

    @property
    def seed(self) -> int:
        return int(self.run.spec.get("seed", 0))

    @property
    def is_aa(self) -> bool:
        """Whether the run belongs to the A/A arm (a replica of the baseline under other seeds)."""
        return bool(self.run.spec.get("aa", False))

    @property
    def pair_key(self) -> int:
        """The baseline seed this run is paired with: its own seed, or for the A/A arm its seed less the offset."""
        return self.seed - AA_SEED_OFFSET if self.is_aa else self.seed

    @property
    def label(self) -> str:
        return f"{self.group} · seed {self.seed}"

    def queries_users(self) -> np.ndarray | None:
        """Per test row its user (the anchor dropped), for business statements per user; ``None`` without users."""
        if self.queries is None:
            return None
        return np.array([str(q).split("@")[0] for q in self.queries])


def select_runs(store: RunStore, experiment: str | None = None, run_ids: list[str] | None = None) -> list[Run]:
    """The finished runs of an experiment (its id or name, the latest of that name) or the given run ids.

    Raises :class:`InvalidParameterError` when neither or both are given, :class:`JobError` for an unknown
    experiment or run, and :class:`InvalidDataError` when a named run has not finished or nothing is left.
    """
    if (experiment is None) == (not run_ids):
        raise InvalidParameterError(_("Name an experiment or give run ids (one of the two, not both)."))
    if experiment is not None:
        matches = [e for e in store.list_experiments() if experiment in (e.id, e.name)]
        if not matches:
            known = ", ".join(f"{e.name!r} ({e.id})" for e in store.list_experiments()) or "none yet"
            raise JobError(_("There is no experiment {experiment!r}; "
                             "experiments: {known}.").format(experiment=experiment, known=known))
        runs = [r for r in store.list_runs(matches[-1].id) if r.status == FINISHED]
        if not runs:
            raise InvalidDataError(_("Experiment {experiment!r} has no finished run yet; wait for its runs to "
                                     "finish.").format(experiment=experiment))
        return runs
    runs = [store.get_run(r) for r in dict.fromkeys(run_ids or [])]
    unfinished = [f"{r.id} ({r.status})" for r in runs if r.status != FINISHED]
    if unfinished:
        raise InvalidDataError(_("Only finished runs can be compared; "
                                 "not finished: {unfinished}.").format(unfinished=', '.join(unfinished)))
    return runs


def _group_labels(runs: list[Run]) -> dict[str, str]:
    """Run id -> group: the strategy, plus the model or parameters where those differ among the runs.

    Runs of the A/A arm (``spec["aa"]``) form their own group, ``"<baseline> (A/A)"``.
    """
    def params(run: Run) -> str:
        return json.dumps(run.spec.get("strategy_params", {}), sort_keys=True)

    models = {r.spec.get("model") for r in runs}
    labels = {}
    for run in runs:
        label = arm_name(run.spec)
        same_name = [r for r in runs if r.spec.get("strategy") == run.spec.get("strategy")]
        if len({params(r) for r in same_name}) > 1:
            label += " (" + ", ".join(f"{k}={v}" for k, v in run.spec.get("strategy_params", {}).items()) + ")"
        if len(models) > 1:
            label += f" / {run.spec.get('model')}"
        labels[run.id] = label
    return labels


def _data_key(spec: dict[str, Any]) -> str:
    return json.dumps({k: spec.get(k) for k in ("source", "task", "task_params", "split", "fingerprint")},
                      sort_keys=True, default=str)


def _derive_artifacts(store: RunStore, runs: list[Run]) -> list[str]:
    """Write ``valid_predictions`` and ``test_queries`` for runs that lack them, from the checkpoint.

    Runs store only their test predictions; the validation predictions (for a threshold chosen on
    validation) and the test rows' users (for per-user ranking) are rebuilt once from the run's spec
    and ``model.pt`` and kept among its artifacts. Returns a note per run where that was impossible
    (data gone or changed, no checkpoint); those runs are compared without the derived scores.
    """
    notes = []
    prepared: dict[str, tuple | RecexpError] = {}          # one dataset per data spec, or why it failed
    for run in runs:
        try:
            _derive_one(store, run, prepared)
        except (RecexpError, *_UNREADABLE) as error:
            notes.append(_("Run {id}: its validation predictions could not be rebuilt ({error}) Its "
                           "tuned-threshold and ranking scores are left out.").format(id=run.id, error=error))
    return notes


def _run_data(run: Run, prepared: dict[str, tuple | RecexpError]) -> tuple:
    """``prepare_data`` of the run's spec, loaded once per data spec into ``prepared`` (a failure too)."""
    key = _data_key(run.spec)
    if key not in prepared:
        try:
            prepared[key] = prepare_data(RunSpec.from_dict(run.spec))
        except RecexpError as error:
            prepared[key] = error
    if isinstance(prepared[key], RecexpError):
        raise prepared[key]
    return prepared[key]


def _derive_one(store: RunStore, run: Run, prepared: dict[str, tuple | RecexpError]) -> None:
    folder = store.artifact_dir(run.id)
    if (folder / "valid_predictions.parquet").exists() and (folder / "test_queries.parquet").exists():
        return
    if task_kind(str(run.spec.get("task", "behavior"))) == "ranking":      # ranked on the full item set already
        return
    if not (folder / "model.pt").exists():
        raise InvalidDataError(_("it has no model checkpoint."))
    dataset, split = _run_data(run, prepared)
    _model, module, _config = load_checkpoint(folder / "model.pt")
    valid = dataset.subset(split.valid)
    _predicted, proba = evaluate(module, valid)
    frame = pd.DataFrame({"row": np.asarray(split.valid, dtype=np.int64), LABEL: valid.y})
    for k, name in enumerate(dataset.schema.classes):
        frame[f"proba_{name}"] = proba[:, k]
    store.write_table(run.id, "valid_predictions", frame)
    test = dataset.frame.iloc[np.asarray(split.test)]
    queries = pd.DataFrame({"row": np.asarray(split.test, dtype=np.int64)})
    if USER in test.columns:
        query = test[USER].astype("string").to_numpy()
        if TIME in test.columns and dataset.task == "purchase":
            query = query + "@" + test[TIME].astype("string").to_numpy()
        queries["query"] = query
    store.write_table(run.id, "test_queries", queries)


def _split_proba(frame: pd.DataFrame) -> tuple[tuple[str, ...], np.ndarray]:
    columns = [c for c in frame.columns if c.startswith("proba_")]
    return tuple(c.removeprefix("proba_") for c in columns), frame[columns].to_numpy(np.float64)


def _newest_per_seed(runs: list[Run], groups: dict[str, str], notes: list[str]) -> list[Run]:
    """Of several runs with the same group and seed on the same data keep the newest, with a note naming the others."""
    newest: dict[tuple[str, int, str], Run] = {}
    for run in sorted(runs, key=lambda r: (r.finished_at or r.created_at or "", r.created_at or "")):
        key = (groups[run.id], int(run.spec.get("seed", 0)), _data_key(run.spec))
        if key in newest:
            notes.append(_("Runs {id} and {id2} both trained {key} with seed {key2}: only the newer, {id2}, is "
                           "compared (a seed counts once).").format(
                           id=newest[key].id, id2=run.id, key=key[0], key2=key[1]))
        newest[key] = run
    kept = set(map(id, newest.values()))
    return [r for r in runs if id(r) in kept]


def _ranking_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-row scores of a next-item run's predictions (its ``rank`` and ``popularity@10`` columns)."""
    scores = pd.DataFrame(next_item_row_scores(frame["rank"].to_numpy(np.float64)))
    scores["popularity@10"] = frame["popularity@10"].to_numpy(np.float64)
    return scores


def _read_run(store: RunStore, run: Run, group: str, with_validation: bool) -> RunPredictions:
    frame = store.read_table(run.id, "predictions")
    if "rank" in frame.columns:
        return RunPredictions(run, group, (), frame["row"].to_numpy(np.int64), frame[LABEL].to_numpy(np.int64),
                              np.zeros((len(frame), 0)), row_scores=_ranking_scores(frame))
    classes, proba = _split_proba(frame)
    item = RunPredictions(run, group, classes, frame["row"].to_numpy(np.int64), frame[LABEL].to_numpy(np.int64), proba,
                          weight=frame[SAMPLE_WEIGHT].to_numpy(np.float64) if SAMPLE_WEIGHT in frame.columns else None)
    if with_validation and (store.artifact_dir(run.id) / "test_queries.parquet").exists():
        valid = store.read_table(run.id, "valid_predictions")
        item.valid_y, item.valid_proba = valid[LABEL].to_numpy(np.int64), _split_proba(valid)[1]
        queries = store.read_table(run.id, "test_queries")
        if "query" in queries.columns and run.spec.get("task") == "purchase":
            item.queries = queries.set_index("row").loc[item.rows, "query"].to_numpy()
    return item


def _read_tta(store: RunStore, run: Run, plain: RunPredictions) -> RunPredictions | None:
    """The run's test-time-augmented predictions as an item of the ``"<group> + TTA"`` arm (``None`` without)."""
    folder = store.artifact_dir(run.id)
    if not (folder / "tta_predictions.parquet").exists():
        return None
    frame = store.read_table(run.id, "tta_predictions")
    classes, proba = _split_proba(frame)
    item = replace(plain, group=plain.group + TTA_ARM, classes=classes, rows=frame["row"].to_numpy(np.int64),
                   y=frame[LABEL].to_numpy(np.int64), proba=proba, valid_y=None, valid_proba=None, tta=True)
    if plain.valid_proba is not None and (folder / "tta_valid_predictions.parquet").exists():
        valid = store.read_table(run.id, "tta_valid_predictions")
        item.valid_y, item.valid_proba = valid[LABEL].to_numpy(np.int64), _split_proba(valid)[1]
    return item


def load_predictions(store: RunStore, runs: list[Run], with_validation: bool = False,
                     notes: list[str] | None = None) -> list[RunPredictions]:
    """Test predictions of ``runs`` (plus validation predictions and ranking queries if asked).

    Runs with test-time-augmented predictions add an item to the arm ``"<group> + TTA"`` (after every
    plain item). Sentences go to ``notes`` (when given) for: runs whose validation predictions cannot be rebuilt; two
    runs of one group with the same seed (the newer is kept); a run whose stored predictions cannot be read
    (it is left out, the others are compared).

    Raises :class:`InvalidDataError` when no run can be read, or the runs were not scored on the same test
    rows with the same labels and classes: paired comparisons are only meaningful on one test split.
    """
    notes = notes if notes is not None else []
    if not runs:
        raise InvalidDataError(_("No runs to compare: choose at least one finished run."))
    groups = _group_labels(runs)
    runs = _newest_per_seed(runs, groups, notes)
    if with_validation:
        notes.extend(_derive_artifacts(store, runs))
    loaded, augmented = [], []
    for run in runs:
        try:
            loaded.append(_read_run(store, run, groups[run.id], with_validation))
        except (RecexpError, *_UNREADABLE) as error:
            notes.append(_("Run {id} ({name}) is left out: its stored predictions cannot be read ({name2}: "
                           "{value}). Delete the run or train it again.").format(
                           id=run.id, name=run.name, name2=type(error).__name__,
                           value=str(error).splitlines()[0] if str(error) else _('no detail')))
    for item in loaded:
        try:
            augmented.append(_read_tta(store, item.run, item))
        except (RecexpError, *_UNREADABLE) as error:
            notes.append(_("Run {id} ({name}): its test-time-augmented predictions cannot be read ({name2}), so "
                           "its '{tta_arm}' arm leaves it out.").format(
                           id=item.run.id, name=item.run.name, name2=type(error).__name__, tta_arm=TTA_ARM.strip()))
    loaded += [item for item in augmented if item is not None]
    if not loaded:
        raise InvalidDataError(_("None of the chosen runs has readable predictions; see the notes above, or "
                                 "train the runs again."))
    check_same_test_split(loaded)
    return loaded


def check_same_test_split(predictions: list[RunPredictions]) -> None:
    """Raise :class:`InvalidDataError` unless every run has the same test rows, labels and classes."""
    first = predictions[0]
    for other in predictions[1:]:
        if other.classes != first.classes:
            raise InvalidDataError(
                _("Runs {id} and {id2} predict different classes ({classes} vs {classes2}): they were trained on "
                  "different tasks or data and cannot be compared. Compare runs of one dataset and task.").format(
                  id=first.run.id, id2=other.run.id, classes=', '.join(first.classes),
                  classes2=', '.join(other.classes)))
        if len(other.rows) != len(first.rows) or not (np.array_equal(other.rows, first.rows)
                                                      and np.array_equal(other.y, first.y)):
            raise InvalidDataError(
                _("Runs {id} and {id2} were scored on different test splits ({n_rows:,} vs {n_rows2:,} rows, or "
                  "other rows or labels), so they cannot be paired. Compare runs of the same dataset, task and "
                  "split settings.").format(
                  id=first.run.id, id2=other.run.id, n_rows=len(first.rows), n_rows2=len(other.rows)))


def sample_losses(store: RunStore, comparison: Comparison, max_rows_per_run: int = 5000,
                  random_state: int = 0) -> pd.DataFrame:
    """Each training row's mean loss over epochs, per run, from ``sample_stats.parquet`` (where stored).

    Returns a frame ``run_id``, ``group``, ``seed``, ``is_synthetic``, ``loss`` with at most
    ``max_rows_per_run`` rows per run (a uniform sample, so plots stay light) and, in
    ``frame.attrs["total_rows"]``, the number of rows they were drawn from; empty when no run recorded
    per-sample statistics.
    """
    rng = np.random.default_rng(random_state)
    parts = []
    total = 0
    for item in comparison.predictions:
        if item.tta or not (store.artifact_dir(item.run.id) / "sample_stats.parquet").exists():
            continue
        frame = store.read_table(item.run.id, "sample_stats")
        per_row = frame.groupby("row", sort=True).agg(loss=("loss", "mean"), is_synthetic=("is_synthetic", "first"))
        total += len(per_row)
        if len(per_row) > max_rows_per_run:
            per_row = per_row.iloc[np.sort(rng.choice(len(per_row), max_rows_per_run, replace=False))]
        parts.append(per_row.reset_index(drop=True).assign(run_id=item.run.id, group=item.group, seed=item.seed))
    if not parts:
        return pd.DataFrame(columns=["run_id", "group", "seed", "is_synthetic", "loss"])
    losses = pd.concat(parts, ignore_index=True)[["run_id", "group", "seed", "is_synthetic", "loss"]]
    losses.attrs["total_rows"] = total
    return losses


def sample_importance(store: RunStore, comparison: Comparison, method: str = "mean_loss",
                      max_rows_per_run: int = 5000, random_state: int = 0) -> pd.DataFrame:
    """Each training row's sample-importance value under ``method``, per compared run (where it can be valued).

    Values come from :func:`recexp.importance.run_importance` (computed once, then read from each run's
    artifacts). Returns a frame ``run_id``, ``group``, ``seed``, ``class``, ``is_synthetic``, ``value`` with at
    most ``max_rows_per_run`` rows per run (a uniform sample; ``frame.attrs["total_rows"]`` is the number of
    rows they were drawn from), and the sentences of runs that could not be valued (e.g. trained before
    recexp kept training rows) in ``frame.attrs["notes"]``.
    """
    rng = np.random.default_rng(random_state)
    parts, notes = [], []
    total = 0
    valuer = get_method(method)
    prepared: dict[str, tuple | RecexpError] = {}      # data of runs not valued yet, loaded once per data spec
    for item in comparison.predictions:
        if item.tta:                                   # the same training rows as the run's plain item
            continue
        try:
            run = None
            if not cached_values_path(store, item.run.id, valuer, 0).exists():
                run = TrainedRun.load(store, item.run.id, data=_run_data(item.run, prepared))
            values = run_importance(store, item.run.id, valuer, run=run).values
        except RecexpError as error:
            notes.append(_("{label}: {error}").format(label=item.label, error=error))
            continue
        total += len(values)
        if len(values) > max_rows_per_run:
            values = values.iloc[np.sort(rng.choice(len(values), max_rows_per_run, replace=False))]
        parts.append(values.assign(run_id=item.run.id, group=item.group, seed=item.seed))
    columns = ["run_id", "group", "seed", "class", "is_synthetic", "value"]
    frame = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    frame.attrs["notes"] = notes
    frame.attrs["total_rows"] = total
    return frame


def _lines(check: dict[str, Any]) -> list[str]:
    """A stored check's sentences in the current language (runs stored before the classes were: as stored)."""
    if "classes" not in check:
        return list(check.get("lines", []))
    return [consistency_line(c["class"], c["detection_auc"]) for c in check["classes"]
            if c.get("detection_auc") is not None]


def consistency_table(predictions: list[RunPredictions]) -> pd.DataFrame:
    """Per group, the consistency check its runs stored (:mod:`recexp.consistency`): did the new rows look real?

    One row per group whose strategy added rows: ``group``, ``runs`` (checked), ``detection_auc`` (mean over
    them of each run's highest class AUC), ``warned`` (runs whose check warned) and ``line`` (the first
    warning sentence, else the first pass sentence). Empty when no compared run added rows. Read it beside the
    deltas: "looks unlike real data" against "helped or hurt".
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    for item in predictions:
        check = item.run.info.get("consistency")
        if item.tta or not check:
            continue
        rows.setdefault(item.group, []).append(check)
    table = []
    for group, checks in rows.items():
        aucs = [c["detection_auc"] for c in checks if c.get("detection_auc") is not None]
        warned = [c for c in checks if c.get("verdict") == "warn"]
        lines = [line for c in (warned or checks) for line in _lines(c)]
        table.append({"group": group, "runs": len(checks), "detection_auc": float(np.mean(aucs)) if aucs else np.nan,
                      "warned": len(warned), "line": lines[0] if lines else ""})
    return pd.DataFrame(table, columns=["group", "runs", "detection_auc", "warned", "line"])
