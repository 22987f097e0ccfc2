"""``python -m recexp compare``: verdicts, scores and intervals of finished runs against the baseline."""

from __future__ import annotations

import argparse

from recexp.cli.common import finite_or_none, open_store, output_file, print_json, writing
from recexp.compare import compare, compare_by_slice, consistency_table, power_sentence, sample_losses
from recexp.errors import RecexpError
from recexp.i18n import _, use_language


def run(args: argparse.Namespace) -> int:
    with use_language(args.lang):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    csv_path = output_file(args.csv, "--csv") if args.csv else None          # before the work
    html_path = output_file(args.html, "--html") if args.html else None
    store = open_store()
    comparison = compare(store, experiment=args.experiment, run_ids=args.runs or None, baseline=args.baseline,
                         n_bootstrap=args.bootstrap)
    unknown = sorted(set(args.metric or []) - set(comparison.summary["metric"]))
    if unknown:
        raise RecexpError(_("Unknown score(s) {unknown}; scores: {metric}.").format(
                            unknown=unknown, metric=', '.join(comparison.summary['metric'].unique())))
    metrics = args.metric or comparison.metrics
    if csv_path is not None:
        with writing(csv_path, "--csv"):
            comparison.to_csv(csv_path)
    if html_path is not None:
        with writing(html_path, "--html"):
            comparison.to_html(html_path, metrics, sample_losses=sample_losses(store, comparison),
                               epoch_metrics=store.epoch_metrics(list(comparison.per_run["run_id"])))
    needed = {str(d): comparison.seeds_needed(d) for d in args.detect or []}
    checks = consistency_table(comparison.predictions)          # did each strategy's new rows look real?
    sliced = compare_by_slice(comparison) if args.by_slice else None
    if args.json:
        payload = comparison.to_dict(args.metric)
        payload["power"]["seeds_needed"] = needed
        payload["consistency"] = [finite_or_none(row) for row in checks.to_dict(orient="records")]
        if sliced is not None:
            by_slice = sliced.to_dict()
            payload |= {"slices": by_slice.pop("slices"), "by_slice": by_slice}
        print_json(payload)
        return 0
    print(comparison.title)
    print(f"primary score: {comparison.primary}" + (" (declared before training)" if comparison.primary_declared
                                                    else " (default; none was declared)"))
    for verdict in comparison.verdicts.values():
        print(f"verdict: {verdict}")
    for flag in comparison.flags:
        print(f"RED FLAG: {flag}")
    print(power_sentence(comparison))
    for difference, seeds in needed.items():
        print(f"seeds needed to detect {difference}: {seeds if seeds else 'more than 500 (or the spread is unknown)'}")
    print(comparison.table(metrics).to_string())
    for row in checks.itertuples():
        print(f"consistency of {row.group}: {row.warned} of {row.runs} runs warned; {row.line}")
    if sliced is not None:
        print(f"by slice ({sliced.metric}; † = too few test rows or seeds for an interval):")
        print(sliced.view().to_string())
        for sentence in sliced.worst_sentences():
            print(f"worst slice: {sentence}")
        for note in sliced.notes:
            print(f"note: {note}")
    for note in comparison.notes:
        print(f"note: {note}")
    for path in filter(None, (args.csv, args.html)):
        print(f"written: {path}")
    return 0

