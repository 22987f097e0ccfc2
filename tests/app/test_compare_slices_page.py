"""The Compare page's "By slice" section under AppTest, on Taobao purchase runs (none vs class_weights x 3 seeds)."""


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
