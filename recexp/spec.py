"""A run as a reproducible spec, and the data it names: the one piece jobs, strategies, importance and compare share.

A :class:`RunSpec` names everything a run depends on (data source and its fingerprint, task, split,
strategy, model, training settings, seed). :func:`prepare_data` turns its data part into the task's
dataset and split. This module sits below strategies and models (it imports only data and tasks),
so every layer above can use it without an import circle; checking a spec's strategy and model
names against their registries is :func:`recexp.jobs.validate_spec`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from recexp.data.samples import sample_source
from recexp.data.source import DataSource
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.outofcore import Sampling, down_sample, sample_log
from recexp.tasks import SplitSpec, build_dataset, split_dataset

#: Seeds of the A/A arm start here, so they never meet the baseline's own seeds (0, 1, 2, ...):
#: A/A seed ``AA_SEED_OFFSET + k`` is paired with baseline seed ``k``.
AA_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class RunSpec:
    """Everything one run depends on; stored as JSON in the run store and replayed by the worker.

    ``source`` is a :class:`recexp.data.source.DataSource` as a dict (path, kind, mapping...) or
    ``{"sample": NAME}`` for a bundled sample. ``fingerprint``, when set, must match the data the
    worker loads, so a changed file fails loudly instead of silently giving other numbers. The
    split has its own seed (in ``split``), so every run compared shares one test split; ``seed``
    drives the strategy and the training. ``aa`` marks a replica of the baseline trained under other
    seeds (the A/A arm, seeds from :data:`AA_SEED_OFFSET`): it must come out "no difference".
    ``tta`` names an expansion operator for test-time augmentation (``None``: none), applied to the
    evaluated rows ``tta_copies`` times with ``tta_params`` (see :mod:`recexp.tta`); the run then stores
    its plain and its TTA predictions. ``sampling`` (``users``, ``negative_rate``) samples at build time: a
    share of users, and of the majority class's rows weighted ``1 / negative_rate`` (see :mod:`recexp.outofcore`).
    ``out_of_core`` says whether a log file's dataset is built out of core and the run trained from it
    (``"auto"``: when the in-memory build would pass the memory setting; see :mod:`recexp.rundata`).
    """

    source: dict[str, Any]
    task: str = "behavior"
    task_params: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    strategy: str = "none"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    model: str = "mlp"
    model_params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    fingerprint: str = ""
    aa: bool = False
    tta: str | None = None
    tta_copies: int = 0
    tta_params: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, float] = field(default_factory=dict)   # build-time sampling (recexp.outofcore.Sampling)
    out_of_core: str = "auto"     # build the dataset out of core: "yes", "no", "auto" (a log past the memory setting)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidParameterError(_("Unknown run spec "
                                          "field(s) {unknown}; known: {known}.").format(unknown=unknown, known=sorted(known)))
        return cls(**data)

    def label(self) -> str:
        """Short name: ``strategy / model / seed`` (``strategy (A/A) / ...`` for the A/A arm)."""
        return f"{arm_name(self.to_dict())} / {self.model} / seed {self.seed}"


def arm_name(spec: dict[str, Any]) -> str:
    """The arm a stored run spec belongs to: its strategy, ``"<strategy> (A/A)"`` for the A/A replica."""
    return str(spec.get("strategy", "?")) + (" (A/A)" if spec.get("aa") else "")


def data_source(source: dict[str, Any]) -> DataSource:
    """The :class:`~recexp.data.source.DataSource` a spec's ``source`` names."""
    if "sample" in source:
        return sample_source(source["sample"])
    return DataSource.from_dict(source)


def prepare_data(spec: RunSpec):
    """Load the source, build the task's dataset and split it, as the spec says.

    Returns ``(dataset, split)``; raises :class:`InvalidDataError` when ``spec.fingerprint`` is set
    and the data no longer matches it.
    """
    log = data_source(spec.source).load()
    split = SplitSpec(**spec.split)
    sampling = Sampling(**spec.sampling)
    sampling.validate()
    dataset = build_dataset(sample_log(log, sampling.users) if log.kind == "log" else log, spec.task, split=split,
                            **spec.task_params)
    if spec.fingerprint and dataset.fingerprint != spec.fingerprint:
        raise InvalidDataError(
            _("The data changed since the run was specified (fingerprint {fingerprint}, expected "
              "{fingerprint2}). Re-open the file on the Data page and launch the run again.").format(
              fingerprint=dataset.fingerprint, fingerprint2=spec.fingerprint))
    return down_sample(dataset, split_dataset(dataset, split), sampling.negative_rate)


__all__ = ["AA_SEED_OFFSET", "RunSpec", "arm_name", "data_source", "prepare_data"]
