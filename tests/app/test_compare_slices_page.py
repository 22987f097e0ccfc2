"""The Compare page's "By slice" section under AppTest, on Taobao purchase runs (none vs class_weights x 3 seeds),
in English and in 简体中文."""

import json
import re

from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_compare_page_shows_the_primary_score_by_slice(app, open_page, taobao_grid_home, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(taobao_grid_home))
    at = open_page(app, "compare")
    assert not at.error, [e.value for e in at.error]
    assert any(s.value == "By slice" for s in at.subheader)
    table = next(frame.value for frame in at.dataframe if "note" in frame.value.columns)
    assert list(table.columns) == ["test rows", "none", "class_weights", "Δ class_weights", "note"]
    assert {"user: new", "user: returning", "item: new", "item: known", "category: other"} <= set(table.index)
    assert table["test rows"].groupby(table.index.str.split(":").str[0]).sum().nunique() == 1   # each covers all
    marked = table[table["none"].str.endswith("†")]
    assert len(marked) and marked["note"].str.len().gt(0).all()          # sparse slices: marked, with the reason
    figure = next(chart for chart in at.get("plotly_chart") if "Who gains, who loses" in chart.proto.spec)
    assert "class_weights" in figure.proto.spec
    worst = [m.value for m in at.markdown if " scores worst on " in m.value]
    assert len(worst) == 2 and worst[0].startswith("- none scores worst on ")


def test_compare_page_says_why_a_table_task_has_no_slices(app, open_page, tmp_path, yeast_grid, monkeypatch):
    yeast_grid.build(tmp_path / "yeast", "yeast")
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path / "yeast"))
    at = open_page(app, "compare")
    assert any(s.value == "By slice" for s in at.subheader)
    assert any("defined for tasks built from a behaviour log" in c.value for c in at.caption)
    assert not any("Who gains, who loses" in chart.proto.spec for chart in at.get("plotly_chart"))


def test_the_slices_read_in_chinese(taobao_grid_home, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(taobao_grid_home))
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params["lang"] = "zh"
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, at.exception
    assert any(s.value == "按切片" for s in at.subheader)
    table = next(frame.value for frame in at.dataframe if "说明" in frame.value.columns)
    assert list(table.columns) == ["测试行数", "none", "class_weights", "Δ class_weights", "说明"]
    assert table.index.name == "切片" and {"user: new", "item: known"} <= set(table.index)   # slice names are data
    marked = table[table["none"].str.endswith("†")]
    assert len(marked) and all(CJK.search(note) for note in marked["说明"])
    titles = [json.loads(chart.proto.spec)["layout"].get("title", {}).get("text", "") for chart in at.get("plotly_chart")]
    assert any(title.startswith("谁受益、谁受损") for title in titles), titles
    worst = [m.value for m in at.markdown if " 上得分最差：" in m.value]
    assert len(worst) == 2 and worst[0].startswith("- none 在 ")
    assert any("切片仅根据训练行划定" in c.value for c in at.caption)
