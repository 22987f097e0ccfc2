"""Strategy Lab charts: the class-count bars read without labels running into each other."""

from recexp.charts.strategies import class_counts_figure, distribution_figure, projection_figure
from recexp.data import load
from recexp.strategies import get_strategy
from recexp.tasks import build_dataset


def test_class_counts_label_only_the_result_and_show_every_count_on_hover():
    before = {"view": 8_974, "cart": 535, "fav": 272, "buy": 219}
    after = {"view": 8_974, "cart": 8_974, "fav": 8_974, "buy": 8_974}
    locked = {"validation": {"view": 5_751, "cart": 368, "fav": 186, "buy": 104}}
    figure = class_counts_figure(before, after, locked, log_y=True)
    bars = {bar.name: bar for bar in figure.data}
    assert list(bars) == ["train before", "train after", "validation (locked)"]
    assert list(bars["train after"].text) == ["8,974"] * 4
    assert bars["train before"].text is None and bars["validation (locked)"].text is None
    assert list(bars["validation (locked)"].y) == [5_751, 368, 186, 104]
    assert all("%{y:,} rows" in bar.hovertemplate for bar in figure.data)
    assert figure.layout.yaxis.type == "log" and figure.layout.yaxis.dtick == 1
    assert class_counts_figure(before, after).layout.yaxis.type is None


def test_categorical_distribution_names_the_source_ids(taobao_head_file):
    """Before vs after bars of a categorical feature are labelled with the log's category ids, not codes."""
    log = load(taobao_head_file(3000))
    train = build_dataset(log, "behavior", sequence_length=0)
    result = get_strategy("random_over").apply(train, seed=0)
    figure = distribution_figure(train, result, "category", top=5)
    top = log.frame["category_id"].astype(str).value_counts().index[:5]
    assert list(figure.data[0].x) == list(top)
    assert figure.layout.xaxis.type == "category" and figure.layout.xaxis.title.text == "category (top 5 before)"


def test_projection_states_its_sample(taobao_head_file):
    """The PCA map draws at most max_points rows of each origin and says how many of how many it shows."""
    train = build_dataset(load(taobao_head_file(3000)), "behavior", sequence_length=0)
    result = get_strategy("random_over").apply(train, seed=0)
    new_rows = int(result.dataset.frame["is_synthetic"].sum())
    figure = projection_figure(train, result, max_points=500)
    drawn = sum(len(trace.x) for trace in figure.data)
    assert drawn == 1000                                           # 500 real rows and 500 new ones
    assert figure.layout.title.text == (f"A sample (1,000 of {len(train) + new_rows:,} rows shown, "
                                        "at most 500 of each origin)")
    assert projection_figure(train, result, max_points=10**6).layout.title.text is None
