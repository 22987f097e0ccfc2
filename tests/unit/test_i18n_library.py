"""The library's sentences reach the reader in the reader's language: errors raised in a background thread
or in English (a worker), texts kept in the run store, and a lint that fails while a recexp error is raised
with an unmarked literal."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from recexp.background import BackgroundTask
from recexp.charts.imbalance import long_tail_table
from recexp.compare.loading import consistency_table
from recexp.data.mapping import infer_roles
from recexp.data.readers import read_raw
from recexp.errors import InvalidParameterError, RecexpError, sentence
from recexp.imbalance import long_tail
from recexp.i18n import Text, _, dumps_text, loads_text, localized, ngettext, use_language
from recexp.runs import FAILED, RUNNING, SQLiteRunStore
from recexp.strategies import get_strategy, strategy_label
from recexp.strategies.neighbours import Search, describe_searches
from recexp.tune import fail_trials_of, trial_rows

ROOT = Path(__file__).resolve().parents[2]
#: The error classes whose messages a person reads (recexp/errors.py).
USER_ERRORS = {"RecexpError", "InvalidParameterError", "InvalidDataError", "JobError", "CancelledError",
               "LogMappingError"}


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _literal(node: ast.AST) -> bool:
    """A message written in place: a string, an f-string, a sum of them, a method called on one
    (``"...".replace(...)``, ``"...".format(...)``) or a choice between them."""
    if isinstance(node, ast.BinOp):
        return _literal(node.left) or _literal(node.right)
    if isinstance(node, ast.IfExp):
        return _literal(node.body) or _literal(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _literal(node.func.value)
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _library_trees():
    for path in sorted((ROOT / "recexp").rglob("*.py")):
        yield path.relative_to(ROOT), ast.parse(path.read_text(encoding="utf-8"))


def test_every_recexp_error_in_the_library_is_raised_with_a_marked_sentence():
    unmarked = [f"{path}:{node.lineno}" for path, tree in _library_trees() for node in ast.walk(tree)
                if isinstance(node, ast.Call) and _name(node.func) in USER_ERRORS and node.args
                and _literal(node.args[0])]
    assert not unmarked, f"recexp errors with an unmarked message (wrap it in _()): {unmarked}"


def test_the_lint_sees_an_unmarked_message():
    tree = ast.parse('raise InvalidDataError(f"The file {name} is empty.")\n'
                     'raise InvalidDataError(f"No {what} events.".replace("  ", " "))\n'
                     'raise InvalidDataError("No rows." if empty else f"{n} rows.")\n'
                     'raise InvalidDataError(_("The file {name} is empty.").format(name=name))')
    calls = [node.exc for node in tree.body]
    assert [_literal(call.args[0]) for call in calls] == [True, True, True, False]


def test_no_function_that_translates_binds_the_name_of_the_translator():
    """``for _ in ...`` or ``a, _ = ...`` in a function that also calls ``_()`` makes ``_`` local there: the call
    then fails (UnboundLocalError) or calls something else."""
    def bound_here(function):                 # names bound by the function itself (comprehensions have their own)
        stack = list(ast.iter_child_nodes(function))
        while stack:
            node = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef | ast.ListComp
                          | ast.SetComp | ast.DictComp | ast.GeneratorExp):
                continue
            if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store):
                yield node
            stack.extend(ast.iter_child_nodes(node))

    shadowing = []
    for path, tree in [*_library_trees(), *((p.relative_to(ROOT), ast.parse(p.read_text(encoding="utf-8")))
                                            for p in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))])]:
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            calls = any(isinstance(n, ast.Call) and _name(n.func) == "_" for n in ast.walk(function))
            if calls and (any(bound_here(function)) or any(a.arg == "_" for a in function.args.args)):
                shadowing.append(f"{path}:{function.lineno} {function.name}")
    assert not shadowing, f"functions where '_' is a local name and also the translator: {shadowing}"


def test_an_error_raised_in_a_background_task_started_from_a_chinese_session_is_chinese():
    def work(progress):
        get_strategy("smote", k_neighbors=0).validate_params()      # a sentence, raised on the task's thread

    with use_language("zh"):
        task = BackgroundTask(work, label="preview").start().wait(30)
    assert task.status == "failed"
    with pytest.raises(InvalidParameterError) as raised:
        task.outcome()
    message = raised.value.args[0]
    assert "k_neighbors" in message and "必须" in message             # made on the thread, in Chinese
    assert "must be" in str(raised.value)                               # shown in English where English is read


def test_an_error_raised_in_english_reads_in_the_language_it_is_shown_in():
    error = InvalidParameterError(_("top must be a positive integer, but got {top!r}.").format(top=-1))
    assert str(error) == "top must be a positive integer, but got -1."
    with use_language("zh"):
        assert str(error) == "top 必须是正整数，但得到 -1。" == sentence(error)
        assert isinstance(sentence(error), Text)                        # keeps its recipe for the run store


def test_a_text_is_written_again_with_its_fields_and_plural_in_another_language():
    nested = _("Run {run_id}: {error}").format(run_id="ab12", error=_("Cancelled by the user."))
    plural = ngettext("{padded:,} row of '{name}' had fewer fields than the {n_names} columns; its missing trailing "
                      "fields were read as empty.",
                      "{padded:,} rows of '{name}' had fewer fields than the {n_names} columns; their missing "
                      "trailing fields were read as empty.", 3).format(padded=3, name="a.csv", n_names=5)
    assert localized(nested, "zh") == "运行 ab12：已被用户取消。"
    assert localized(plural, "zh") == "'a.csv' 有 3 行的字段少于 5 列；缺少的末尾字段被读作空值。"
    assert pickle.loads(pickle.dumps(nested)).render("zh") == "运行 ab12：已被用户取消。"
    assert localized("plain text", "zh") == "plain text"
    assert loads_text(dumps_text(nested)) == nested and dumps_text("plain") == "plain" and loads_text(None) is None


def test_a_failed_runs_reason_stored_by_an_english_worker_reads_in_chinese(tmp_path):
    store = SQLiteRunStore(tmp_path)
    run = store.create_run(store.create_experiment("i18n").id, {"strategy": "smote"}, status=RUNNING)
    try:                                                               # as the worker records a failure
        get_strategy("smote", k_neighbors=0).validate_params()
    except RecexpError as error:
        store.finish(run.id, FAILED, error=sentence(error))
    store.update(run.id, message=_("applying strategy {strategy}: {message}").format(
        strategy="smote", message=_("Validating")))
    english = store.get_run(run.id)
    assert "k_neighbors" in english.error and "must be" in english.error
    assert english.message == "applying strategy smote: Validating"
    with use_language("zh"):
        chinese = store.get_run(run.id)
    assert "k_neighbors" in chinese.error and "必须" in chinese.error and "must be" not in chinese.error
    assert chinese.message == "正在应用策略 smote：正在校验"


def test_compare_writes_the_stored_consistency_check_in_the_readers_language():
    class Item:                                                        # what consistency_table reads of a run
        tta, group = False, "smote"

        class run:                                                     # noqa: N801 - stands for a Run
            info = {"consistency": {"detection_auc": 0.93, "verdict": "warn",
                                    "lines": ["new cart rows are distinguishable from real ones: AUC 0.93"],
                                    "classes": [{"class": "cart", "detection_auc": 0.93}]}}

    with use_language("zh"):
        (line,) = consistency_table([Item()])["line"]
    assert "cart" in line and "AUC" in line and "distinguishable" not in line
    old = {"detection_auc": 0.9, "verdict": "warn", "lines": ["as stored"]}       # a run stored before classes
    Item.run.info = {"consistency": old}
    assert list(consistency_table([Item()])["line"]) == ["as stored"]


def test_optunas_own_words_on_the_tune_figures_are_chinese():
    import optuna

    from recexp.charts.tune import study_figures

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("k_neighbors", 1, 9) + trial.suggest_int("seed", 0, 3),
                   n_trials=5)
    with use_language("zh"):
        figures = study_figures(study)
    history, parallel = figures["Optimisation history"], figures["Parallel coordinates"]
    assert (history.layout.xaxis.title.text, history.layout.yaxis.title.text) == ("试验", "目标值")
    assert history.data[0].name == "目标值"
    assert parallel.layout.xaxis.ticktext[0] == "目标值" and "k_neighbors" in parallel.layout.xaxis.ticktext
    assert study_figures(study)["Optimisation history"].layout.xaxis.title.text == "Trial"


def test_a_tune_trial_failed_by_the_job_runner_reads_in_the_viewers_language(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    trial = study.ask()
    trial.set_user_attr("pid", 4242)
    study.ask()                                                        # another worker's trial: kept running
    assert fail_trials_of(url, "s", 4242, _("Cancelled by the user.")) == [trial.number]   # the runner: English
    english = {row["number"]: row["error"] for row in trial_rows(optuna.load_study(study_name="s", storage=url))}
    assert english[trial.number].startswith("Cancelled by the user. Its worker process (pid 4242) ended")
    with use_language("zh"):
        rows = trial_rows(optuna.load_study(study_name="s", storage=url))
    chinese = {row["number"]: row["error"] for row in rows}
    assert "工作进程（pid 4242）" in chinese[trial.number] and "Cancelled" not in chinese[trial.number]
    assert all(error is None for number, error in chinese.items() if number != trial.number)


def test_the_neighbour_engines_auto_choice_reads_in_the_viewers_language():
    reason = _("estimated {times}").format(times="sklearn 0.10 s, torch 0.20 s")     # as _choose writes it
    searches = [Search("sklearn", 5000, 4000, 5, 0.3, reason), Search("sklearn", 5000, 4000, 5, 0.2, reason),
                Search("torch", 9000, 100, 5, 0.1, _("estimated {times}").format(times="torch 0.01 s"))]
    note = describe_searches(searches)
    assert "auto measured 4,000 queries over 5,000 rows: sklearn (estimated sklearn 0.10 s, torch 0.20 s); " \
           "100 queries over 9,000 rows: torch (estimated torch 0.01 s)" in note
    chinese = localized(note, "zh")
    assert "估计耗时 sklearn 0.10 s" in chinese and "估计耗时 torch 0.01 s" in chinese and "实测" in chinese
    assert "queries over" not in chinese and "estimated" not in chinese


def test_the_rows_pyarrow_drops_are_counted_under_reasons_that_read_in_the_viewers_language():
    raw = read_raw(("drops.csv", b"user,item,behavior,time\n1,2,pv,100\n3,4\n5,6,pv,200,9\n7,8,buy,300\n"))
    assert raw.dropped == {"truncated row (2 of 4 fields)": 1, "row with too many fields (5 of 4)": 1}
    with use_language("zh"):
        chinese = [localized(reason) for reason in raw.dropped]
    assert all(not reason.isascii() and "4" in reason for reason in chinese), chinese


def test_the_evidence_for_a_timestamp_column_found_by_its_values_is_chinese_in_a_chinese_session(chinese_export):
    frame = pd.read_csv(chinese_export(rows=200)).set_axis(list("ABCDEFG"), axis=1)     # no header names known
    assert infer_roles(frame)[0]["timestamp"].evidence == "values are epoch times"
    with use_language("zh"):
        choice = infer_roles(frame)[0]["timestamp"]
    assert choice.column == "E" and choice.evidence == "取值为纪元时间戳"


def test_the_long_tail_table_is_headed_in_the_language_shown():
    tails = [long_tail(np.arange(1, 201), "item"), long_tail(np.arange(1, 51), "user", behavior="buy")]
    english = long_tail_table(tails).data
    assert list(english.index) == ["items", "users (buy)"] and english.index.name == "activity of"
    assert list(english.columns) == ["with an event", "events", "Gini", "top 1% hold", "top 10% hold",
                                     "top 20% hold"]
    with use_language("zh"):
        chinese = long_tail_table(tails).data
    assert list(chinese.index) == ["商品", "用户 (buy)"] and chinese.index.name == "活跃度对象"
    assert list(chinese.columns) == ["有事件的数量", "事件数", "Gini", "前 1% 占比", "前 10% 占比", "前 20% 占比"]
    assert chinese.loc["商品", "事件数"] == english.loc["items", "events"] == sum(range(1, 201))


def test_a_strategys_one_name_gives_its_family_in_the_language_shown():
    assert strategy_label("smote") == "SMOTE (smote) · balancing"
    with use_language("zh"):
        chinese = strategy_label("smote")
    assert chinese.startswith("SMOTE") and "(smote)" in chinese and chinese.endswith("· 均衡采样"), chinese
