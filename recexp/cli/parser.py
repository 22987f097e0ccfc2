"""The arguments of every command (argparse only: building the parser loads no data or model code)."""

from __future__ import annotations

import argparse

from recexp.i18n import DEFAULT_LANGUAGE, LANGUAGES


def add_inspect(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect", help="read a log or table; print its column mapping, validation report and class balance",
        description="Read a behaviour log or feature table (CSV/TSV/Parquet/JSON lines, optionally gzip/zip; "
                    "UTF-8 or GBK) and print the inferred column mapping, the validation report and the class "
                    "balance. Files without a header row have columns c0, c1, ... by position.")
    p.add_argument("file", help="a file, or a folder of same-layout files")
    p.add_argument("--kind", choices=["log", "table"],
                   help="log: one event per row (default); table: features plus a label column")
    p.add_argument("--map", action="append", metavar="ROLE=COLUMN",
                   help="send a role (user, item, category, behavior, timestamp) to a column; repeatable")
    p.add_argument("--label", metavar="COLUMN", help="label column of a table (e.g. c0 without a header row)")
    p.add_argument("--header", choices=["auto", "yes", "no"], default="auto", help="is the first row a header?")
    p.add_argument("--encoding", help="text encoding (default: detect UTF-8, else GBK/GB18030)")
    p.add_argument("--task", help="learning task whose classes to count (default: behavior for logs, table for tables)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter of the task; repeatable")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """FILE, how to read it, the task and the split: shared by every command that builds a dataset."""
    p.add_argument("file", help="a data file or folder, or the name of a bundled sample (e.g. taobao)")
    p.add_argument("--kind", choices=["log", "table"], help="log: one event per row (default); table: features + label")
    p.add_argument("--label", metavar="COLUMN", help="label column of a table")
    p.add_argument("--header", choices=["auto", "yes", "no"], default="auto", help="is the first row a header?")
    p.add_argument("--map", action="append", metavar="ROLE=COLUMN", help="send a log role to a column; repeatable")
    p.add_argument("--task", required=True, help="behavior, purchase, table or next_item (ranking: HR@K, NDCG@K and "
                                                 "MRR over the full item set, not sampled negatives)")
    p.add_argument("--task-param", action="append", metavar="KEY=VALUE", help="task parameter; repeatable")
    p.add_argument("--split-param", action="append", metavar="KEY=VALUE",
                   help="split setting: method=temporal|stratified|leave_last_out (default: temporal for a log, "
                        "stratified for a table, which has no event times, leave_last_out for next_item), test_size, "
                        "valid_size, group_by_user, seed")


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Sampling at build time and the out-of-core path for a log file larger than memory."""
    p.add_argument("--sample-users", type=float, metavar="P",
                   help="keep P%% of the users (whole histories, by a stable hash of the user id); default 100")
    p.add_argument("--negative-rate", type=float, metavar="R",
                   help="keep this share (0-1] of the majority class's rows, each weighted 1/R; default 1")
    p.add_argument("--out-of-core", choices=["auto", "yes", "no"], default="auto",
                   help="build the dataset on disk with DuckDB (memory bounded by RECEXP_MEMORY_LIMIT) and work from "
                        "it part by part; auto: when the in-memory build would not fit")


def add_run(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="train in the foreground: every strategy x seed on one dataset; print test metrics",
        description="Build the task's dataset, split it, apply each strategy to the training split only, train "
                    "the model with each seed and score it on the untouched test split. Every run is stored in the "
                    "workspace ($RECEXP_HOME, default ./workspace) as one experiment; a progress bar goes to stderr.")
    add_dataset_arguments(p)
    add_sampling_arguments(p)
    p.add_argument("--strategy", action="append", metavar="NAME",
                   help="strategy to apply to the training split; repeat to compare several (default: none)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="strategy parameter; with several strategies it goes to each one that has it")
    p.add_argument("--model", default="mlp", help="logreg, mlp, wide_deep, deepfm, dcn_v2, din or lightgbm; for "
                                                  "--task next_item: two_tower or sasrec (default: mlp)")
    p.add_argument("--model-param", action="append", metavar="KEY=VALUE", help="model parameter; repeatable")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="runs per strategy, with seeds 0..N-1 (default 3, the fewest that give an interval over seeds)")
    p.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs at most (early stopping may end sooner)")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--learning-rate", type=float, metavar="LR")
    p.add_argument("--loss", choices=["cross_entropy", "weighted", "focal", "sampled_softmax", "popularity_sampled"],
                   help="training loss (a strategy that asks for one, e.g. focal_loss, overrides it)")
    p.add_argument("--patience", type=int, metavar="N", help="early-stopping patience in epochs")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cuda, mps or cpu")
    p.add_argument("--train-from", choices=["auto", "memory", "disk"],
                   help="where training reads its rows: memory, disk (memory-mapped shards), or auto (the default: "
                        "disk when the training split's tensors exceed $RECEXP_MEMORY_LIMIT)")
    p.add_argument("--experiment", metavar="NAME", help="name of the experiment the runs are grouped in (with "
                   "--add-seeds: the experiment to extend, by id or name)")
    p.add_argument("--primary", metavar="SCORE",
                   help="the score whose verdict counts, declared before training (default: balanced_accuracy for "
                        "several classes, pr_auc[<positive class>] for two)")
    p.add_argument("--aa", action="store_true",
                   help="add an A/A arm: the baseline 'none' again under disjoint seeds; it must come out 'no difference'")
    p.add_argument("--tta", metavar="NAME",
                   help="test-time augmentation: score each validation and test row as the mean over the row and "
                        "--tta-copies copies perturbed by this expansion operator (gaussian_noise, feature_masking, "
                        "sequence_crop, sequence_mask, sequence_reorder); stores plain and TTA predictions")
    p.add_argument("--tta-copies", type=int, default=4, metavar="K",
                   help="perturbed copies per row with --tta (default 4; K + 1 forward passes per row)")
    p.add_argument("--tta-param", action="append", metavar="KEY=VALUE",
                   help="parameter of the --tta operator, e.g. scale=0.05; repeatable")
    p.add_argument("--add-seeds", type=int, metavar="N",
                   help="queue N more seeds of every arm of --experiment into it and run them (other grid options "
                        "are taken from the experiment)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every run's id, device and metrics")


def add_runs(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list the experiments and runs in the workspace's run store",
                              description="List every run in the workspace ($RECEXP_HOME, default ./workspace): "
                                          "status, device, progress and test metrics.")
    p.add_argument("--experiment", metavar="ID", help="only the runs of this experiment")
    p.add_argument("--status", action="append", choices=["queued", "running", "finished", "failed", "cancelled"],
                   help="only runs with this status; repeatable")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_strategies(subparsers) -> None:
    p = subparsers.add_parser(
        "strategies", help="list every strategy with its family and parameter spec",
        description="List the registered strategies (balancing, weighting, sample expansion) with their "
                    "parameters: type, allowed values, default and help.")
    p.add_argument("--json", action="store_true", help="print one JSON list")


def add_apply(subparsers) -> None:
    p = subparsers.add_parser(
        "apply", help="apply one strategy to a dataset's training split; write it as Parquet",
        description="Build the task's dataset, split it, apply the strategy to the training split only and write "
                    "the new training split (with is_synthetic and sample_weight columns) to a Parquet file. "
                    "Prints the class counts before and after.")
    add_dataset_arguments(p)
    add_sampling_arguments(p)
    p.add_argument("--strategy", required=True, metavar="NAME", help="a name from `python -m recexp strategies`")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="strategy parameter, e.g. k_neighbors=3 or sampling_strategy=buy:5000,cart:5000; repeatable")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the strategy (default 0)")
    p.add_argument("--out", required=True, metavar="PATH", help="Parquet file to write the new training split to")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_compare(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare finished runs: scores with intervals over seeds, deltas and p-values vs the baseline",
        description="Score the finished runs of an experiment (or the given runs) on their common test split, "
                    "summarise every score over seeds (mean, 95% interval) and pair each strategy with the "
                    "no-strategy baseline seed by seed. The verdict is on the experiment's primary score: a paired "
                    "t-test over per-seed differences (the training seed is the unit), Holm-adjusted across the "
                    "strategies, at least 3 paired seeds; other scores are exploratory (Benjamini-Hochberg).")
    p.add_argument("runs", nargs="*", metavar="RUN_ID", help="runs to compare (instead of --experiment)")
    p.add_argument("--experiment", metavar="NAME", help="experiment id or name (the latest with that name)")
    p.add_argument("--baseline", default="none", help="strategy every other one is paired with (default: none)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="replicates of the row bootstrap of these trained models (0: none; it never decides significance)")
    p.add_argument("--detect", type=float, action="append", metavar="DIFF",
                   help="how many paired seeds would detect this difference of the primary score (80%% power); repeatable")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help="score to show (repeatable; default: the headline scores; --json prints every score)")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report (opens offline)")
    p.add_argument("--lang", choices=sorted(LANGUAGES), default=DEFAULT_LANGUAGE,
                   help="language of the HTML report and of the verdicts and notes (default: en; zh: 简体中文)")
    p.add_argument("--csv", metavar="PATH", help="write the summary (strategy x score) as CSV")
    p.add_argument("--by-slice", action="store_true",
                   help="also the primary score per slice of the test rows (log tasks: new vs returning users, new vs "
                        "known items, popularity deciles, top categories, activity segments; learned from training "
                        "rows) for every strategy, with intervals over seeds and the difference to the baseline")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_synth(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="fit a generator on a dataset's training split; write synthetic rows and a quality report",
        description="Build the task's dataset, split it, fit a generator (gan, vae, gaussian_copula) on the real "
                    "training rows only, generate rows (with the training class mix, or per class with --class) "
                    "and write them as Parquet, plus a JSON quality report against the training split (the "
                    "validation split is the efficacy test set and the privacy baseline). --param epsilon=E trains "
                    "gan or vae with differential privacy (DP-SGD); the report then has the epsilon spent. "
                    "Generated user and item ids are new ids (or salted hashes: --param ids=hash), never real ones.")
    add_dataset_arguments(p)
    p.add_argument("--method", required=True, metavar="NAME", help="generator: gan, vae or gaussian_copula")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="generator parameter, e.g. epochs=50, device=cpu, epsilon=3 (differential privacy) or "
                        "ids=hash; repeatable")
    p.add_argument("--rows", type=int, metavar="N",
                   help="rows to generate with the training class mix (default: as many as the training split has)")
    p.add_argument("--class", dest="classes", action="append", metavar="NAME:COUNT",
                   help="rows of one class instead of --rows, e.g. --class buy:5000; repeatable")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random_state of the generator (default 0)")
    p.add_argument("--impute", action="store_true",
                   help="fill missing feature values of the training split by conditional sampling from the "
                        "generator first, and compare that with mean/mode imputation in the report")
    p.add_argument("--detector", choices=["logistic", "gbm"], default="logistic",
                   help="classifier of the detection score (logistic matches SDMetrics' LogisticDetection)")
    p.add_argument("--out", metavar="PATH", help="Parquet file for the synthetic rows (default: not written)")
    p.add_argument("--report", required=True, metavar="PATH.json", help="JSON file for the quality report")


def add_importance(subparsers) -> None:
    p = subparsers.add_parser(
        "importance", help="value every training row of a finished run with one method; write the values as Parquet",
        description="Open a finished run of the workspace ($RECEXP_HOME), value each of its training rows with "
                    "one sample-importance method (higher = more valuable) and print the summary per class and "
                    "for real vs synthetic rows. Values are cached among the run's artifacts; the per-row values "
                    "go to --out, or stay in the cache file, whose path is printed.")
    p.add_argument("run_id", metavar="RUN_ID", help="a finished run (see `python -m recexp runs`)")
    p.add_argument("--method", required=True, metavar="NAME",
                   help="mean_loss, forgetting, el2n, grand, tracin, knn_shapley, data_oob, ...")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="method parameter, e.g. k=5; repeatable")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the method's random choices (default 0)")
    p.add_argument("--out", metavar="PATH.parquet", help="write the per-row values here as well")
    p.add_argument("--json", action="store_true", help="print one JSON object")



def add_tune(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="search strategies' parameters with Optuna, scored on the validation split; print the best",
        description="Search the parameters of one or more strategies (and optionally the model's and the training "
                    "settings) with Optuna. Every trial applies a configuration to the training split, trains, and "
                    "scores the primary score on the validation split (the test split is never loaded); a pruner "
                    "stops hopeless trials from their per-epoch validation score. The study is stored in "
                    "$RECEXP_OPTUNA_STORAGE, else optuna.db in the workspace: the same --study continues it. Send the "
                    "best configurations to `python -m recexp run` to compare them on test with seeds.")
    add_dataset_arguments(p)
    p.add_argument("--strategy", action="append", required=True, metavar="NAME",
                   help="strategy to search; repeat to search several in one study (the strategy is then a choice)")
    p.add_argument("--trials", type=int, required=True, metavar="N", help="trials to run now (a budget of at least 1)")
    p.add_argument("--minutes", type=float, metavar="M", help="stop starting trials after M minutes")
    p.add_argument("--study", metavar="NAME", help="study name; an existing one is continued (default: a new name)")
    p.add_argument("--model", default="mlp", help="the model every trial trains (default: mlp)")
    p.add_argument("--model-param", action="append", metavar="KEY=VALUE", help="model parameter; repeatable")
    p.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs per trial at most (default 10)")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--learning-rate", type=float, metavar="LR")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cuda, mps or cpu")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="training seed of every trial (default 0)")
    p.add_argument("--primary", metavar="SCORE", help="score to optimise on validation (default: as `run`)")
    p.add_argument("--search-model", action="store_true", help="also search the model's own parameters")
    p.add_argument("--search-train", action="append", choices=["learning_rate", "batch_size", "epochs"],
                   help="also search this training setting; repeatable")
    p.add_argument("--fix", action="append", metavar="NAME=VALUE",
                   help="fix a dimension, e.g. smote.k_neighbors=3; repeatable")
    p.add_argument("--range", action="append", metavar="NAME=LOW:HIGH",
                   help="narrow a numeric dimension, e.g. smote.k_neighbors=2:8; repeatable")
    p.add_argument("--choices", action="append", metavar="NAME=A,B",
                   help="narrow a categorical dimension, e.g. smote.sampling_strategy|kind=choice; repeatable")
    p.add_argument("--sampler", choices=["tpe", "random"], default="tpe", help="Optuna sampler (default tpe)")
    p.add_argument("--sampler-seed", type=int, default=0, metavar="N", help="seed of the sampler (default 0)")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median",
                   help="stops hopeless trials from their per-epoch validation score (default median)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="processes sharing the study (default 1: trials run in this process)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: study, split, best_params, best_value and every trial")
