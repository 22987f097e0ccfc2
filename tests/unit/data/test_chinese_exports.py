"""Chinese (and other) shop exports: roles from Chinese and English header spellings, values checked
against the role, a confidence per role, and a warning for every guess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recexp.data import load
from recexp.data.mapping import GUESS, infer_roles, normalise_name

ROOT = Path(__file__).resolve().parents[3]
EXPECTED = {"user": "用户ID", "item": "商品ID", "category": "商品类目ID", "behavior": "行为类型", "timestamp": "时间戳"}


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
@pytest.mark.parametrize("time_text", [False, True])
@pytest.mark.parametrize("rows", [200, 5000])
def test_chinese_headers_take_their_roles(chinese_export, encoding, time_text, rows):
    """The extra columns 商品类别 (category words) and 商品名称 (product names) take no role; 200 rows
    used to send user to 商品类别."""
    log = load(chinese_export(encoding, rows=rows, time_text=time_text))
    assert log.mapping == EXPECTED
    assert {role: choice["confidence"] for role, choice in log.report.roles.items()} == dict.fromkeys(EXPECTED, 0.95)
    assert not any("guess" in w for w in log.report.warnings)
    assert sorted(log.report.unused_columns) == sorted(["商品类别", "商品名称"])
    assert log.report.duplicates == 0
    assert log.frame["user_id"].astype(str).str.isdigit().all()          # ids, not 电子产品
    assert "view" in log.behaviors and set(log.behaviors) <= {"view", "cart", "fav", "buy"}   # 浏览 -> view ...


@pytest.mark.parametrize("spelling", [
    {"user": "用户id", "item": "商品编号", "category": "类目", "behavior": "行为", "timestamp": "时间"},
    {"user": "user_id", "item": "商品编号", "category": "cat_id", "behavior": "事件类型", "timestamp": "event_time"},
    {"user": "uid", "item": "商品ID", "category": "类目ID", "behavior": "事件类型", "timestamp": "时间"},
    {"user": "会员ID", "item": "SKU编号", "category": "品类", "behavior": "操作类型", "timestamp": "发生时间"},
    {"user": "ＵＩＤ", "item": "商品ＩＤ", "category": "类目", "behavior": "行为", "timestamp": "日期时间"},  # full-width
])
def test_other_spellings(chinese_export, spelling):
    log = load(chinese_export("gb18030", headers=spelling, rows=500))
    assert log.mapping == spelling
    assert all(choice["confidence"] >= GUESS for choice in log.report.roles.values())


def test_normalised_names_keep_chinese_letters():
    assert normalise_name("用户ID") == "用户id" and normalise_name("User ID") == "userid"
    assert normalise_name("商品_编号") == "商品编号" and normalise_name("ＵＩＤ") == "uid"


def test_a_user_header_over_category_words_is_not_believed(chinese_export):
    """A column headed 用户 holds category words: the real ids (under a header no list knows) take the
    user role, and the choice is reported as a guess."""
    frame = pd.read_csv(chinese_export(rows=2000)).drop(columns=["用户ID"]).rename(columns={"商品类别": "用户"})
    frame.insert(0, "会话", pd.read_csv(chinese_export(rows=2000))["用户ID"])
    choices, warnings = infer_roles(frame)
    assert choices["user"].column == "会话" and choices["user"].confidence < GUESS
    assert any(w.startswith("The user role is a guess: column '会话'") and "Column mapping panel" in w
               for w in warnings)


def test_words_are_a_guess_and_said_why(chinese_export):
    """With only category words left for the user role, they take it, with a low confidence and the reason."""
    frame = pd.read_csv(chinese_export(rows=2000)).drop(columns=["用户ID", "商品名称"]).rename(
        columns={"商品类别": "用户"})
    choices, warnings = infer_roles(frame)
    assert choices["user"].column == "用户" and choices["user"].confidence < GUESS
    assert "words (e.g. '" in choices["user"].evidence and "distinct values" in choices["user"].evidence
    assert any("user role is a guess" in w and "like category names" in w for w in warnings)


def test_an_item_header_with_few_distinct_values_is_a_guess(chinese_export):
    frame = pd.read_csv(chinese_export(rows=2000)).drop(columns=["商品ID"])
    frame["商品ID"] = frame["商品类目ID"] % 7                        # 7 "items" in 2,000 rows
    choices, warnings = infer_roles(frame.drop(columns=["商品类目ID"]))
    assert choices["item"].confidence < GUESS and "only 7 distinct values" in choices["item"].evidence
    assert any("item role is a guess" in w for w in warnings)


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5, 6], [5, 6, 0, 1, 2, 3, 4], [6, 4, 2, 0, 5, 3, 1]])
def test_unknown_headers_never_make_words_a_user_or_item(chinese_export, order):
    """Headers no list knows (A..G): roles come from values; words never take the user or item role
    while id columns are left, and every choice made from values alone is below the name confidence."""
    frame = pd.read_csv(chinese_export(rows=200)).iloc[:, order]
    original = list(frame.columns)
    anonymous = frame.set_axis(list("ABCDEFG"), axis=1)
    choices, warnings = infer_roles(anonymous)
    named = {role: original["ABCDEFG".index(choice.column)] for role, choice in choices.items()}
    assert named == EXPECTED
    assert all(choice.confidence < 0.95 for choice in choices.values())
    assert [w.split(":")[0] for w in warnings] == [f"The {role} role is a guess" for role, choice in choices.items()
                                                    if choice.confidence < GUESS]


def test_inspect_json_contract(chinese_export, tmp_path):
    """`python -m recexp inspect FILE --task behavior --json` maps the Chinese headers without --map and
    carries the confidence per role and the warnings."""
    path = chinese_export("gb18030", rows=300, time_text=True)
    completed = subprocess.run([sys.executable, "-m", "recexp", "inspect", str(path), "--task", "behavior", "--json"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=120,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr
    result = json.loads(completed.stdout)
    assert {role: result["mapping"][role] for role in ("user", "item", "behavior", "timestamp")} == \
        {"user": "用户ID", "item": "商品ID", "behavior": "行为类型", "timestamp": "时间戳"}
    assert result["confidence"] == dict.fromkeys(EXPECTED, 0.95)
    assert result["roles"]["user"]["evidence"] == "header name '用户ID'; values fit"
    assert result["warnings"] == result["validation"]["warnings"]
    assert result["imbalance"]["task"] == "behavior" and sum(result["imbalance"]["class_counts"].values()) == 300


def test_a_small_time_sorted_export_keeps_its_named_user_column(chinese_export, tmp_path):
    """5 users in 100 events sorted by time: few users, not grouped, but ids under 用户ID: no guess."""
    frame = pd.read_csv(chinese_export(rows=3000))
    small = frame.groupby("用户ID").head(20).head(100).sort_values("时间戳", kind="stable")
    assert small["用户ID"].nunique() == 5
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False, encoding="gb18030")
    log = load(path)
    assert log.mapping == EXPECTED and log.report.roles["user"]["confidence"] == 0.95
    assert not any("guess" in w for w in log.report.warnings)


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_an_all_text_chinese_header_is_a_header(encoding):
    """No number or date column below it: the header is told from its known names (行为类型), in any script."""
    rows = [("电子产品", "手机", "购买"), ("服装", "衬衫", "浏览"), ("食品", "牛奶", "浏览"), ("服装", "外套", "加购")] * 5
    text = "商品类别,商品名称,行为类型\n" + "".join(",".join(row) + "\n" for row in rows)
    table = load(("中文.csv", text.encode(encoding)), kind="table", label_column="行为类型")
    assert list(table.frame.columns) == ["商品类别", "商品名称", "行为类型"]
    assert len(table.frame) == 20 and table.frame["行为类型"].value_counts()["浏览"] == 10
