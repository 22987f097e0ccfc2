"""A Chinese session (``?lang=zh``) that makes the library speak: a bad upload, the validation warnings and
role evidence of a Chinese-header export, an infeasible parameter, a strategy's notes and the consistency
check in the Strategy Lab, and a failed run's reason that an (English) worker stored. No English sentence
is left on the page."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

import optuna

from recexp.errors import RecexpError, sentence
from recexp.i18n import _
from recexp.runs import FAILED, RUNNING, SQLiteRunStore
from recexp.spec import RunSpec
from recexp.strategies import STRATEGIES, get_strategy
from recexp.tune import TuneSpec, fail_trials_of, run_study, storage_url
from recexp.ui.params import widget_key

from tests.app.test_i18n_pages import CJK, open_in, shown_texts

#: A word of English, or one Chinese character.
WORD = re.compile(r"[A-Za-z]{2,}|[\u4e00-\u9fff]")
#: English words in a row (numbers and punctuation between them, no Chinese) that make a sentence left
#: untranslated. Data values (column names, behaviour names, strategy ids, a run's name) are a few words.
SENTENCE_WORDS = 5


def english_words_in_a_row(text: str) -> int:
    """The longest run of English words in ``text`` that no Chinese character interrupts."""
    longest = run = 0
    for word in WORD.findall(text):
        run = run + 1 if word.isascii() else 0
        longest = max(longest, run)
    return longest


def english_sentences(at: AppTest) -> list[str]:
    """The texts on the page and in the sidebar with an English sentence in them."""
    return sorted({text for text in shown_texts(at) if english_words_in_a_row(text) >= SENTENCE_WORDS})


def test_the_check_sees_an_english_sentence_between_numbers_and_in_chinese_text():
    assert english_words_in_a_row("Nearest neighbours: 3 searches with sklearn (0.04 s in all, choosing included).") >= 5
    assert english_words_in_a_row("无法读取：its values are decimals, not ids") >= 5
    assert english_words_in_a_row("smote · mlp · seed 0 失败：k_neighbors 必须是 Int(1, None)") < 5


def chinese_session(page: str = "data") -> AppTest:
    """A ``?lang=zh`` session on ``page`` (the Strategy Lab with its preview rows set)."""
    return open_in("zh", page)


def test_the_data_page_says_a_bad_upload_and_a_chinese_exports_warnings_in_chinese(chinese_export, tmp_path):
    at = chinese_session()
    at.segmented_control(key="data_origin").set_value("Upload a file").run()
    at.file_uploader(key="data_upload").set_value(("picture.csv", b"\x89PNG\r\n\x1a\n" + bytes(200), "text/csv"))
    at.run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert "picture.csv" in error and "PNG" in error and CJK.search(error), error
    assert not english_sentences(at), english_sentences(at)

    # unknown headers: every role is inferred from the values, each guess warned with its evidence
    import pandas as pd

    frame = pd.read_csv(chinese_export(rows=200)).set_axis(list("ABCDEFG"), axis=1)
    path = tmp_path / "导出.csv"
    frame.to_csv(path, index=False)
    at.file_uploader(key="data_upload").set_value((path.name, path.read_bytes(), "text/csv")).run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert warnings and all(CJK.search(w) for w in warnings), warnings
    assert any("猜测" in w for w in warnings), warnings                     # "the user role is a guess ..."
    evidence = [c.value for c in at.caption if "%" in c.value]
    assert evidence and all(CJK.search(c) for c in evidence), evidence
    assert not english_sentences(at), english_sentences(at)


def test_the_strategy_lab_says_an_infeasible_parameter_its_notes_and_the_check_in_chinese():
    at = chinese_session("strategy_lab")
    at.selectbox(key="lab_strategy").set_value("smote").run()
    k = widget_key("lab", STRATEGIES["smote"], "k_neighbors")
    at.number_input(key=k).set_value(400).run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert "k_neighbors=400" in error and CJK.search(error), error
    assert not english_sentences(at), english_sentences(at)

    at.number_input(key=k).set_value(3).run()
    assert not at.exception and not at.error
    notes = [i.value for i in at.info]
    assert any("类别特征" in n for n in notes) and any("近邻" in n for n in notes), notes   # SMOTE's notes
    checks = [m.value for m in [*at.success, *at.warning]]
    assert any("AUC" in c and CJK.search(c) for c in checks), checks                      # new rows vs real ones
    assert not english_sentences(at), english_sentences(at)


def test_a_failed_runs_reason_stored_in_english_shows_in_chinese(tmp_path, monkeypatch):
    home = tmp_path / "ws"
    monkeypatch.setenv("RECEXP_HOME", str(home))
    store = SQLiteRunStore(home)
    run = store.create_run(store.create_experiment("i18n").id, {"strategy": "smote", "model": "mlp", "seed": 0},
                           name="smote · mlp · seed 0", status=RUNNING)
    try:                                                   # what the worker stores, in its own language (English)
        get_strategy("smote", k_neighbors=0).validate_params()
    except RecexpError as error:
        store.finish(run.id, FAILED, error=sentence(error))
    assert "must be" in store.get_run(run.id).error
    at = chinese_session("train")
    reasons = [e.value for e in at.error if "smote · mlp · seed 0" in e.value]
    assert reasons and "k_neighbors" in reasons[0] and "必须" in reasons[0], reasons
    assert not english_sentences(at), english_sentences(at)


def test_the_data_page_gives_the_reasons_pyarrow_dropped_rows_for_in_chinese(chinese_export):
    at = chinese_session()
    at.segmented_control(key="data_origin").set_value("Upload a file").run()
    data = chinese_export(rows=200).read_bytes().rstrip(b"\n")
    data += "\n1,2,3\n1,2,3,浏览,1511544070,电子产品,手机,9\n,2,3,浏览,1511544070,电子产品,手机\n".encode()
    at.file_uploader(key="data_upload").set_value(("坏行.csv", data, "text/csv")).run()
    assert not at.exception, at.exception
    (reasons,) = [frame.value for frame in at.dataframe if "原因" in frame.value.columns]
    assert len(reasons) == 3 and reasons["行数"].tolist() == [1, 1, 1], reasons
    assert all(CJK.search(reason) and not re.search("[A-Za-z]{3,}", reason) for reason in reasons["原因"]), reasons
    assert not english_sentences(at), english_sentences(at)


def test_the_tune_page_gives_a_trials_failure_stored_by_an_english_worker_in_chinese(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    monkeypatch.delenv("RECEXP_OPTUNA_STORAGE", raising=False)
    base = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified"}, model="logreg",
                   train={"epochs": 1})
    study = run_study(TuneSpec(base, ("smote",)), "lost", n_trials=1)
    study.ask().set_user_attr("pid", 4242)                          # a worker's trial when it was killed
    assert fail_trials_of(storage_url(), "lost", 4242, _("Cancelled by the user.")) == [1]   # the runner: English
    at = chinese_session("tune")
    (table,) = [frame.value for frame in at.dataframe if len(frame.value) == 2]
    (error,) = [cell for cell in table.to_numpy().ravel() if isinstance(cell, str) and "4242" in cell]
    assert "工作进程（pid 4242）" in error and CJK.search(error) and "Cancelled" not in error, error
    assert list(table["state"]) == ["已完成", "失败"], table                      # the states named too
    english = [text for text in english_sentences(at) if storage_url() not in text]     # the path is data
    assert not english, english
