"""Comparing finished runs: load them (:mod:`~recexp.compare.loading`), test them with the training seed as the
unit of replication (:mod:`~recexp.compare.stats`, no run store needed), and report (:mod:`~recexp.compare.report`);
:mod:`~recexp.compare.slices` breaks the primary score down by slice of the test rows (new users, new items...).

>>> from recexp.compare import compare                                 # doctest: +SKIP
>>> result = compare(store, experiment="smote vs none")
>>> result.verdicts, result.to_dict()["primary"]
"""

from recexp.compare.comparison import (BASELINE, BOOTSTRAP_METRICS, DEFAULT_METRICS, INFERENCE, ROWS_BOOTSTRAP, TUNED,
                                       Comparison, capture_at, compare, default_positive, inference_text)
from recexp.compare.loading import (TTA_ARM, RunPredictions, check_same_test_split, consistency_table, load_predictions,
                                    sample_importance, sample_losses, select_runs)
from recexp.compare.report import metric_title, power_sentence
from recexp.compare.slices import MIN_SLICE_ROWS, SliceComparison, compare_by_slice
from recexp.compare.stats import MIN_SEEDS, seed_interval

__all__ = ["BASELINE", "BOOTSTRAP_METRICS", "DEFAULT_METRICS", "INFERENCE", "MIN_SEEDS", "MIN_SLICE_ROWS",
           "ROWS_BOOTSTRAP", "TTA_ARM", "TUNED", "Comparison", "RunPredictions", "SliceComparison", "capture_at",
           "check_same_test_split", "compare", "compare_by_slice", "consistency_table", "default_positive",
           "inference_text", "load_predictions", "metric_title", "power_sentence", "sample_importance",
           "sample_losses", "seed_interval", "select_runs"]
