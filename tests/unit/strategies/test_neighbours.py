"""The k-NN backends (recexp.strategies.neighbours) against scikit-learn's neighbours on real Taobao features.

Exact engines must return scikit-learn's neighbours except where distances tie, and the samplers built on
them (SMOTE, ADASYN, ENN, Tomek links) the same rows for the same seed except rows that depend on a tied
neighbour list; every such row is counted and checked to be one.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

from recexp.cli import main
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.strategies import STRATEGIES, get_strategy, stratified_sample
from recexp.strategies import neighbours as nb
from recexp.strategies.balancing import sampler_labels
from recexp.strategies.neighbours import KNN_BACKEND, Neighbours

EXACT = ("kdtree", "faiss", "torch")


@pytest.fixture(scope="module")
def behaviour_train(task_data):
    dataset, split = task_data["behavior"]
    return dataset.subset(split.train)


@pytest.fixture(scope="module")
def features(behaviour_train):
    """The numeric features of the whole behaviour training split (57,676 real rows) and its labels."""
    X = behaviour_train.frame[list(behaviour_train.schema.numeric)].to_numpy(np.float32)
    assert not np.isnan(X).any()
    return X, behaviour_train.y


@pytest.fixture(scope="module")
def sample_train(behaviour_train):
    """20,000 rows of the training split, every class kept (what the sampler comparisons run on)."""
    return stratified_sample(behaviour_train, 20_000, seed=0, min_per_class=500)


def exact_distances(X, queries, indices):
    diff = X[indices].astype(np.float64) - queries[:, None, :].astype(np.float64)
    return np.sqrt((diff * diff).sum(axis=2))


def tied_rows(X, queries, k, backend):
    """Queries whose neighbour lists differ between scikit-learn and ``backend``; asserts that they differ only
    at ties (the same distances, up to float rounding, in the same order)."""
    reference = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(queries, return_distance=False)
    ours = Neighbours(n_neighbors=k, backend=backend).fit(X).kneighbors(queries, return_distance=False)
    differ = (reference != ours).any(axis=1)
    if differ.any():
        theirs_d = np.sort(exact_distances(X, queries[differ], reference[differ]), axis=1)
        ours_d = exact_distances(X, queries[differ], ours[differ])
        assert np.all(np.diff(ours_d, axis=1) >= 0)                     # ours: nearest first
        np.testing.assert_allclose(ours_d, theirs_d, rtol=1e-5, atol=1e-6)
    return differ, reference, ours


# --- the estimator ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", EXACT)
def test_exact_engines_return_sklearns_neighbours_up_to_counted_ties(features, backend):
    X, y = features
    queries = X[y != 0]                                   # every row of the three smaller classes
    differ, reference, ours = tied_rows(X, queries, 6, backend)
    print(f"{backend}: {differ.sum()} of {len(queries):,} neighbour lists differ from scikit-learn's, all at ties")
    assert differ.mean() < 0.005
    assert (reference[:, 0] == ours[:, 0]).mean() > 0.99


def test_ties_are_ordered_by_row_number(features):
    X, _ = features
    distinct = np.unique(X, axis=0)[:50]
    duplicated = np.vstack([distinct, distinct])          # every row twice: each pair ties at distance 0
    for backend in EXACT:
        indices = Neighbours(n_neighbors=2, backend=backend).fit(duplicated).kneighbors(
            duplicated, return_distance=False)
        first = np.arange(100) % 50
        np.testing.assert_array_equal(indices, np.column_stack([first, first + 50]), err_msg=backend)


def test_the_estimator_has_the_nearest_neighbors_interface(features):
    X, _ = features
    X = X[:3000]
    finder = Neighbours(n_neighbors=4, backend="kdtree")
    twin = clone(finder).set_params(n_jobs=1)             # what imbalanced-learn's ENN does to it
    assert twin.get_params() == {"n_neighbors": 4, "backend": "kdtree", "n_jobs": 1}
    twin.fit(X)
    graph = twin.kneighbors_graph(X[:10])
    assert graph.shape == (10, 3000) and graph.sum() == 40
    reference = NearestNeighbors(n_neighbors=4).fit(X)
    distances, indices = twin.kneighbors()                # X=None: each row's neighbours, itself left out
    theirs = reference.kneighbors(return_distance=False)
    assert not (indices == np.arange(3000)[:, None]).any()
    assert (indices == theirs).all(axis=1).mean() > 0.995
    np.testing.assert_allclose(distances, exact_distances(X, X, indices), rtol=1e-9)


def test_auto_keeps_sklearn_for_small_searches_and_measures_large_ones(features):
    X, _ = features
    small = Neighbours(n_neighbors=3).fit(X[:500])
    np.testing.assert_array_equal(small.kneighbors(X[:500], return_distance=False),
                                  NearestNeighbors(n_neighbors=3).fit(X[:500]).kneighbors(X[:500], return_distance=False))
    assert small.searches_[-1].backend == "sklearn"
    large = Neighbours(n_neighbors=4).fit(X)
    large.kneighbors(X, return_distance=False)
    search = large.searches_[-1]
    assert search.backend in ("kdtree", "faiss") and search.reason.startswith("estimated kdtree")
    large.kneighbors(X[:5000], return_distance=False)     # the same fit: the measured choice is kept
    assert large.searches_[-1].backend == search.backend and large.searches_[-1].reason == ""


@pytest.mark.skipif(nb.faiss is None, reason="needs faiss-cpu")
def test_auto_takes_brute_force_where_the_tree_degenerates_without_building_a_full_index_to_time_it(monkeypatch):
    # 40,000 random 24-dimensional rows: a KD-tree visits most leaves per query, brute force does not care
    X = np.random.default_rng(3).normal(size=(40_000, 24)).astype(np.float32)
    built = []
    monkeypatch.setitem(nb.ENGINES, "faiss",
                        lambda data, threads: built.append(len(data)) or nb._FaissFlat(data, threads))
    finder = Neighbours(n_neighbors=4).fit(X)
    indices = finder.kneighbors(X[:2000], return_distance=False)
    search = finder.searches_[-1]
    assert search.backend == "faiss", search.reason
    assert search.reason.startswith("estimated kdtree") and "faiss" in search.reason
    assert built == [nb.SAMPLED_ROWS, len(X)]                # timed on a sample, then the whole index for the search
    np.testing.assert_array_equal(indices, NearestNeighbors(n_neighbors=4).fit(X).kneighbors(
        X[:2000], return_distance=False))


def test_approximate_search_reports_its_recall(features):
    X, _ = features
    finder = Neighbours(n_neighbors=6, backend="faiss_hnsw").fit(X)
    indices = finder.kneighbors(X, return_distance=False)
    reported = finder.searches_[-1].recall
    exact = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X)[0]
    found = exact_distances(X, X, indices) <= exact[:, -1:] * (1 + 1e-6) + 1e-6
    print(f"HNSW recall@6: reported {reported:.4f}, over every query {found.mean():.4f}")
    assert reported >= 0.99 and abs(reported - found.mean()) < 0.01


# --- bad input ---------------------------------------------------------------------------------------


def test_bad_input_gives_sentences(features, sample_train, monkeypatch):
    X, _ = features
    with_nan = X[:100].copy()
    with_nan[3, 2] = np.nan
    with pytest.raises(InvalidDataError, match="missing \\(NaN\\) or infinite"):
        Neighbours(backend="kdtree").fit(with_nan)
    with pytest.raises(InvalidParameterError, match="asked for 11 neighbours among 10 rows"):
        Neighbours(n_neighbors=11, backend="faiss").fit(X[:10]).kneighbors(X[:10])
    counts = sample_train.class_counts()
    smallest = min(counts, key=counts.get)
    with pytest.raises(InvalidParameterError, match=f"class '{smallest}' has"):
        get_strategy("smote", k_neighbors=counts[smallest], knn_backend="kdtree").apply(sample_train)
    with pytest.raises(InvalidParameterError, match="knn_backend"):
        get_strategy("smote", knn_backend="annoy").apply(sample_train)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidParameterError, match="asks for a GPU, but this machine has no usable CUDA GPU"):
            get_strategy("edited_nearest_neighbours", knn_backend="torch_gpu").apply(sample_train)
    monkeypatch.setattr(nb, "faiss", None)
    with pytest.raises(InvalidParameterError, match="needs the FAISS package, which is not installed"):
        get_strategy("adasyn", knn_backend="faiss").apply(sample_train)


# --- the samplers: same rows, or differing only where neighbours tie -----------------------------


def new_rows(result, numeric):
    frame = result.dataset.frame
    new = frame["is_synthetic"].to_numpy()
    return frame.loc[new, list(numeric)].to_numpy(np.float32), result.source_rows[new]


def class_tie_rows(X, y, k, backend):
    """Training rows whose same-class neighbour list (the SMOTE / ADASYN query) ties differently."""
    tied = np.zeros(len(y), dtype=bool)
    for code in np.unique(y):
        rows = np.flatnonzero(y == code)
        tied[rows] = tied_rows(X[rows], X[rows], k, backend)[0]
    return tied


@pytest.mark.parametrize("backend", ("kdtree", "faiss"))
@pytest.mark.parametrize("name", ("smote", "adasyn"))
def test_over_samplers_make_the_same_rows_except_from_tied_seeds(sample_train, name, backend):
    numeric = sample_train.schema.numeric
    X = sample_train.frame[list(numeric)].to_numpy(np.float32)
    y = sampler_labels(sample_train)
    k_param = "k_neighbors" if name == "smote" else "n_neighbors"
    reference = get_strategy(name, knn_backend="sklearn").apply(sample_train, seed=7)
    result = get_strategy(name, knn_backend=backend).apply(sample_train, seed=7)
    assert any(note.startswith("Nearest neighbours: ") and backend in note for note in result.report.notes)
    if name == "adasyn":                                  # ADASYN's row counts come from neighbours among all rows
        all_tied = tied_rows(X, X[y != np.bincount(y).argmax()], 6, backend)[0]
        print(f"adasyn: {all_tied.sum()} tied neighbour lists among all rows")
    theirs, their_seeds = new_rows(reference, numeric)
    ours, our_seeds = new_rows(result, numeric)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(our_seeds, their_seeds)
    differ = ~(ours == theirs).all(axis=1)
    tied = class_tie_rows(X, y, STRATEGIES[name]().get_params()[k_param] + 1, backend)
    print(f"{name} on {backend}: {differ.sum()} of {len(ours):,} new rows differ; {tied.sum()} seed rows have tied "
          f"neighbour lists")
    assert tied[our_seeds[differ]].all()


@pytest.mark.parametrize("backend", ("kdtree", "faiss"))
def test_enn_keeps_the_same_rows_except_tied_ones(sample_train, backend):
    X = sample_train.frame[list(sample_train.schema.numeric)].to_numpy(np.float32)
    reference = get_strategy("edited_nearest_neighbours", sampling_strategy="all", knn_backend="sklearn").apply(sample_train)
    result = get_strategy("edited_nearest_neighbours", sampling_strategy="all", knn_backend=backend).apply(sample_train)
    tied = tied_rows(X, X, 4, backend)[0]
    changed = np.setxor1d(reference.source_rows, result.source_rows)
    print(f"ENN on {backend}: kept {len(result.source_rows):,} rows, {len(changed)} differ; {tied.sum()} tied lists")
    assert len(reference.source_rows) < len(sample_train)      # the rule removed rows: the comparison bites
    assert tied[changed].all()


@pytest.mark.parametrize("backend", ("kdtree", "faiss"))
def test_tomek_links_remove_the_same_rows_except_tied_ones(sample_train, backend):
    X = sample_train.frame[list(sample_train.schema.numeric)].to_numpy(np.float32)
    reference = get_strategy("tomek_links", sampling_strategy="all", knn_backend="sklearn").apply(sample_train)
    result = get_strategy("tomek_links", sampling_strategy="all", knn_backend=backend).apply(sample_train)
    tied, theirs, ours = tied_rows(X, X, 2, backend)
    # A link depends on a row's nearest neighbour and on that neighbour's: both ends count.
    affected = tied | tied[theirs[:, 1]] | tied[ours[:, 1]]
    changed = np.setxor1d(reference.source_rows, result.source_rows)
    print(f"Tomek on {backend}: removed {len(sample_train) - len(result.source_rows)} rows, {len(changed)} differ; "
          f"{tied.sum()} tied lists")
    assert len(reference.source_rows) < len(sample_train)
    assert affected[changed].all()


# --- parameters, the run spec and the CLI ---------------------------------------------------------


NEIGHBOUR_BASED = ("smote", "smotenc", "borderline_smote", "svm_smote", "kmeans_smote", "adasyn", "near_miss",
                   "tomek_links", "edited_nearest_neighbours", "smote_enn", "smote_tomek")


def test_every_neighbour_based_strategy_has_the_backend_parameter():
    for name in NEIGHBOUR_BASED:
        assert STRATEGIES[name].params["knn_backend"] is KNN_BACKEND
        assert STRATEGIES[name]().get_params()["knn_backend"] == "auto"
    assert {"auto", "sklearn", "faiss", "torch"} <= set(KNN_BACKEND.options)
    assert "knn_backend" not in STRATEGIES["random_over"].params


@pytest.mark.parametrize("name", ("borderline_smote", "near_miss", "smote_enn", "smote_tomek", "kmeans_smote"))
def test_other_samplers_run_on_the_faiss_backend_with_sklearns_rows(small_train, name):
    train = small_train["behavior"]
    reference = get_strategy(name, knn_backend="sklearn").apply(train, seed=1)
    result = get_strategy(name, knn_backend="faiss").apply(train, seed=1)
    assert any("with faiss" in note for note in result.report.notes)
    pd.testing.assert_frame_equal(result.dataset.frame, reference.dataset.frame)


def test_cli_applies_smote_with_the_faiss_backend(tmp_path, capsys):
    out = tmp_path / "x.parquet"
    assert main(["apply", "taobao", "--task", "behavior", "--strategy", "smote", "--param", "knn_backend=faiss",
                 "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["params"]["knn_backend"] == "faiss"
    assert any(note.startswith("Nearest neighbours: 3 searches with faiss") for note in payload["notes"])
    assert pd.read_parquet(out)["is_synthetic"].sum() == payload["rows_after"] - payload["rows_before"]
    assert main(["apply", "taobao", "--task", "behavior", "--strategy", "smote", "--param", "knn_backend=annoy",
                 "--out", str(out)]) == 2
    assert "knn_backend" in capsys.readouterr().err
