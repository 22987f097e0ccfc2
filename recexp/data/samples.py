"""The real data samples bundled in the repository's ``data/`` folder (provenance: ``data/README.md``).

>>> from recexp.data.samples import load_sample
>>> log = load_sample("taobao")          # the default sample: 80,106 Taobao events
>>> log.report.rows_kept
80106
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recexp.data.source import DataSource
from recexp.errors import InvalidParameterError
from recexp.i18n import _

#: The repository's data folder.
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True)
class Sample:
    """One bundled file and how to read it.

    ``class_mix`` is the label (raw behaviour value, or label value of a table) -> rows after loading,
    as documented in ``data/README.md``.
    """

    name: str
    path: Path
    kind: str                                                # "log" or "table"
    description: str
    class_mix: dict[str, int]
    loader: dict[str, Any] = field(default_factory=dict)    # keyword arguments for recexp.data.load


SAMPLES: dict[str, Sample] = {
    s.name: s for s in (
        Sample("taobao", DATA_DIR / "taobao_userbehavior" / "UserBehavior_sample.csv", "log",
               "Taobao UserBehavior, 80k events of 772 users (no header; truncated last line)",
               {"pv": 71_898, "cart": 4_307, "fav": 2_228, "buy": 1_673},
               {"time_window": ("2017-11-25T00:00:00+08:00", "2017-12-04T00:00:00+08:00")}),
        Sample("retailrocket", DATA_DIR / "retailrocket" / "events_sample.csv", "log",
               "RetailRocket events of 1,500 visitors (ms timestamps; 192:1 view:transaction)",
               {"view": 2_695, "addtocart": 62, "transaction": 14}),
        Sample("criteo", DATA_DIR / "criteo_sample" / "criteo_sample.csv", "table",
               "Criteo display-ad clicks, 200 rows, 13 numeric + 26 hashed categorical features",
               {"0": 151, "1": 49}, {"label_column": "label"}),
        Sample("criteo_raw", DATA_DIR / "criteo_sample" / "criteo_1k_raw.tsv", "table",
               "Criteo raw TSV, 1,000 rows, no header, ragged rows (label is column c0)",
               {"0": 795, "1": 205}, {"label_column": "c0", "header": False}),
        Sample("yeast_me2", DATA_DIR / "imbalanced_benchmarks" / "yeast_me2.csv", "table",
               "Yeast ME2 benchmark, 1,484 rows, 8 numeric features, 28:1",
               {"-1": 1_433, "1": 51}, {"label_column": "TARGET"}),
        Sample("wine_quality", DATA_DIR / "imbalanced_benchmarks" / "wine_quality.csv", "table",
               "Wine quality benchmark, 4,898 rows, 11 numeric features, 26:1",
               {"-1": 4_715, "1": 183}, {"label_column": "TARGET"}),
        Sample("page_blocks0", DATA_DIR / "imbalanced_benchmarks" / "keel_page-blocks0.csv", "table",
               "KEEL page-blocks0, 5,472 rows, 10 numeric features (one malformed row)",
               {"negative": 4_912, "positive": 559}, {"label_column": "Class"}),
    )
}

#: The sample every page works on until the analyst picks another.
DEFAULT_SAMPLE = "taobao"


def get_sample(name: str) -> Sample:
    """The registered sample called ``name``."""
    try:
        return SAMPLES[name]
    except KeyError:
        raise InvalidParameterError(
            _("There is no bundled sample called {name!r}. "
              "Samples: {samples}.").format(name=name, samples=', '.join(SAMPLES))) from None


def load_sample(name: str = DEFAULT_SAMPLE, *, progress=None):
    """Load a bundled sample with its registered reader settings.

    Parameters
    ----------
    name : str
        A key of :data:`SAMPLES` (default ``"taobao"``).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    BehaviorLog or FeatureTable
    """
    from recexp.data import load

    sample = get_sample(name)
    return load(sample.path, kind=sample.kind, progress=progress, **sample.loader)


def sample_source(name: str = DEFAULT_SAMPLE) -> DataSource:
    """The :class:`DataSource` of a bundled sample (what the dashboard stores in a run spec)."""
    sample = get_sample(name)
    return DataSource(path=str(sample.path), kind=sample.kind, label_column=sample.loader.get("label_column"),
                      header=sample.loader.get("header"), time_window=sample.loader.get("time_window"))
