"""Nearest-neighbour searches for imbalanced-learn's samplers: scikit-learn's, a KD-tree, FAISS, PyTorch.

imbalanced-learn takes a neighbours *estimator* wherever it takes a neighbour count (``k_neighbors``,
``m_neighbors``, ``n_neighbors``): any object with scikit-learn's ``NearestNeighbors`` interface
(``fit``, ``kneighbors``, ``kneighbors_graph``, ``n_neighbors``, ``get_params`` / ``set_params``).
:class:`Neighbours` is such an estimator with a choice of search engine; the samplers themselves are
imbalanced-learn's, unchanged.

Backends (the ``knn_backend`` parameter of every neighbour-based strategy, :data:`KNN_BACKEND`)

* ``sklearn``: scikit-learn's ``NearestNeighbors`` exactly as imbalanced-learn builds it (on more than 15
  features that is a brute-force search, quadratic in the rows).
* ``kdtree``: SciPy's ``cKDTree``, exact, queries sent in the tree's spatial order (neighbouring queries
  walk the same leaves, which measured 2.4x faster than a random order on 3.6M rows).
* ``faiss``: a FAISS flat (brute-force) index, exact: FAISS's float32 search proposes ``k + margin``
  candidates, which are ranked again by float64 distance.
* ``torch`` / ``torch_gpu``: batched distance matrices and ``topk`` in PyTorch (on the GPU when there is
  one; ``torch_gpu`` insists on it), candidates ranked again in float64; batches sized to a memory budget.
* ``faiss_hnsw``: approximate (a FAISS HNSW graph). Its recall@k is measured on up to 1,000 sampled
  queries against an exact search and reported.
* ``auto``: exact only. Small searches (fitted rows x queries x features under :data:`SMALL_WORK`) use
  scikit-learn as before. Larger ones build the KD-tree and time it on :data:`TIMING_QUERIES` sampled queries;
  when that estimate (build included) is over :data:`GOOD_ENOUGH_SECONDS`, the brute-force engines (FAISS, or
  scikit-learn without it, and PyTorch on a GPU) are timed on the same queries against an index of at most
  :data:`SAMPLED_ROWS` sampled fitted rows, scaled to all rows (their cost is rows x queries), so no
  full index is built only to be measured. The engine with the lowest estimate runs, and is kept for
  later queries of the same fit.

Ties
    Exact engines other than ``sklearn`` return neighbours ordered by (float64 Euclidean distance, row
    index): of two rows at the same distance, the lower row number comes first. Which rows enter the list
    when more than ``k`` tie at the k-th distance is not defined (scikit-learn does not define it
    either). Two exact engines therefore return the same neighbours except where distances tie (exact
    duplicates, or distances equal to within float rounding, which scikit-learn's own brute force
    computes as ``|x|^2 - 2 x.y + |y|^2`` and so perturbs); ``tests/unit/strategies/test_neighbours.py``
    counts those rows on the bundled Taobao data.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import sparse
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.neighbors._base import KNeighborsMixin

from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _, format_integer, ngettext
from recexp.params import Choice

try:                                    # optional: the faiss backends need the faiss-cpu (or faiss-gpu) package
    import faiss
except ImportError:                     # pragma: no cover - exercised where faiss is absent
    faiss = None

KNN_BACKEND = Choice({
    "auto": "auto: the fastest exact search, measured on this data",
    "sklearn": "scikit-learn (imbalanced-learn's default)",
    "kdtree": "KD-tree (SciPy), exact",
    "faiss": "FAISS flat index, exact",
    "torch": "PyTorch, exact (GPU when there is one)",
    "torch_gpu": "PyTorch on the GPU, exact",
    "faiss_hnsw": "FAISS HNSW, approximate (recall reported)",
}, help="Nearest-neighbour search. 'auto' picks the fastest exact one for the data's size and the device "
        "(neighbours equal scikit-learn's up to ties); 'faiss_hnsw' is approximate and reports its recall@k.",
   search=False)        # how the neighbours are found, not which: a tuning study keeps the default

#: fitted rows x queries x features below which ``auto`` keeps scikit-learn without measuring (about 0.1 s).
SMALL_WORK = 1e9
#: Sampled queries ``auto`` times each engine on.
TIMING_QUERIES = 300
#: A KD-tree estimate below this many seconds ends ``auto``'s measuring.
GOOD_ENOUGH_SECONDS = 1.0
#: ``auto`` times a brute-force engine (FAISS, PyTorch on a GPU) on an index of at most this many sampled fitted
#: rows and scales the time by rows / sample (a brute-force search costs rows x queries).
SAMPLED_ROWS = 32_768
#: Sampled queries ``faiss_hnsw`` measures its recall on.
PROBE_QUERIES = 1000
#: Extra candidates the float32 engines (FAISS, PyTorch) propose before the float64 ranking.
MARGIN = 8
#: Bytes of distances one PyTorch batch may hold (on the GPU: a quarter of the free memory).
TORCH_CPU_BATCH_BYTES = 256 * 2**20


def backend_problem(backend: str) -> str | None:
    """Why ``backend`` cannot run on this machine (a sentence), or ``None`` if it can."""
    if backend in ("faiss", "faiss_hnsw") and faiss is None:
        return _("knn_backend={backend!r} needs the FAISS package, which is not installed. Install faiss-cpu "
                 "(pip install faiss-cpu) or choose knn_backend='kdtree', 'torch' or 'auto'.").format(backend=backend)
    if backend == "torch_gpu" and not torch.cuda.is_available():
        return _("knn_backend='torch_gpu' asks for a GPU, but this machine has no usable CUDA GPU. Choose "
                 "knn_backend='torch' (GPU when there is one, else CPU), 'kdtree' or 'auto'.")
    return None


@dataclass(frozen=True)
class Search:
    """One ``kneighbors`` call: which engine answered it and what it cost."""

    backend: str
    fitted: int
    queries: int
    k: int
    seconds: float
    reason: str = ""                      # auto: why this engine (measured estimates)
    recall: float | None = None           # approximate engines: recall@k on sampled queries


class Neighbours(KNeighborsMixin, BaseEstimator):
    """A ``NearestNeighbors``-compatible estimator with a choice of search engine (Euclidean distance).

    Parameters
    ----------
    n_neighbors : int
        Neighbours returned per query (imbalanced-learn asks for one more than its ``k``: the row itself).
    backend : str
        One of :data:`KNN_BACKEND`'s options.
    n_jobs : int, optional
        Threads; ``None`` takes ``torch.get_num_threads()`` (the budget recexp's job runner sets),
        ``-1`` every core.

    Attributes
    ----------
    searches_ : list of Search
        Every ``kneighbors`` call since construction (imbalanced-learn refits one estimator per class, so
        this spans the classes).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> Neighbours(n_neighbors=2, backend="kdtree").fit(X).kneighbors(X, return_distance=False)
    array([[0, 1],
           [1, 0],
           [2, 1]])
    """

    def __init__(self, n_neighbors=5, backend="auto", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.backend = backend
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        """Index the rows of ``X`` (dense or sparse, finite); returns ``self``."""
        problem = backend_problem(self.backend)
        if problem:
            raise InvalidParameterError(problem)
        if self.backend not in KNN_BACKEND.options:
            raise InvalidParameterError(
                _("knn_backend must be {knn_backend}, but got {backend!r}.").format(
                  knn_backend=KNN_BACKEND.describe(), backend=self.backend))
        if not hasattr(self, "searches_"):
            self.searches_: list[Search] = []
        # imbalanced-learn refits one estimator on the same matrix (ADASYN: all rows, once per class, between
        # fits on the class): the last two fits keep their indexes and auto's choice.
        fits = [fit for fit in getattr(self, "_fits", []) if fit.raw is not X]
        again = [fit for fit in getattr(self, "_fits", []) if fit.raw is X]
        self._fits = (again or [_Fit(X, _dense(X))]) + fits[:1]
        self.n_samples_fit_, self.n_features_in_ = self._fits[0].X.shape
        return self

    @property
    def _X(self) -> np.ndarray:
        return self._fits[0].X

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The ``n_neighbors`` nearest fitted rows of each row of ``X`` (of each fitted row, itself
        excluded, when ``X`` is ``None``), nearest first.

        Returns ``(distances, indices)``, or ``indices`` alone when ``return_distance`` is false.
        """
        k = self.n_neighbors if n_neighbors is None else int(n_neighbors)
        itself = X is None
        queries = self._X if itself else _dense(X)
        wanted = k + 1 if itself else k
        if wanted > self.n_samples_fit_:
            raise InvalidParameterError(
                _("The nearest-neighbour search was asked for {wanted} neighbours among {n_samples_fit:,} rows "
                  "(a class or cluster with too few rows for this neighbour count). Lower the neighbour count to "
                  "at most {n_samples_fit2}, or leave that class out of the target mix.").format(
                  wanted=wanted, n_samples_fit=self.n_samples_fit_,
                  n_samples_fit2=self.n_samples_fit_ - (1 if itself else 0)))
        if queries.shape[1] != self.n_features_in_:
            raise InvalidDataError(
                _("The nearest-neighbour search was fitted on {n_features_in} features but queried with {shape}.").format(
                  n_features_in=self.n_features_in_, shape=queries.shape[1]))
        start = time.perf_counter()
        backend, reason = self._choose(queries, wanted)
        engine = self._engine(backend)
        distances, indices = engine.search(queries, wanted, same_rows=queries is self._X or X is self._fits[0].raw)
        recall = engine.recall(queries, wanted, indices, distances) if backend == "faiss_hnsw" else None
        if itself:
            distances, indices = _drop_self(distances, indices)
        self.searches_.append(Search(backend, self.n_samples_fit_, len(queries), wanted,
                                     time.perf_counter() - start, reason, recall))
        return (distances, indices) if return_distance else indices

    # --- choosing and building engines ---------------------------------------------------------

    def _threads(self) -> int:
        if self.n_jobs is None:
            return torch.get_num_threads()
        if self.n_jobs < 0:
            return len(os.sched_getaffinity(0))
        return max(1, int(self.n_jobs))

    def _engine(self, backend: str):
        fit = self._fits[0]
        if backend not in fit.engines:
            fit.engines[backend] = ENGINES[backend](fit.raw if backend == "sklearn" else fit.X, self._threads())
        return fit.engines[backend]

    def _choose(self, queries: np.ndarray, k: int) -> tuple[str, str]:
        """The engine for this search, and for ``auto`` why (measured estimates)."""
        if self.backend == "torch":
            return ("torch_gpu" if torch.cuda.is_available() else "torch"), ""
        if self.backend != "auto":
            return self.backend, ""
        work = float(self.n_samples_fit_) * len(queries) * self.n_features_in_
        if work < SMALL_WORK:
            return "sklearn", "small search"
        fit = self._fits[0]
        if fit.chosen is not None:                          # measured on an earlier query of this fit
            return fit.chosen, ""
        rng = np.random.default_rng(0)
        probe = queries[rng.choice(len(queries), min(TIMING_QUERIES, len(queries)), replace=False)]
        scale = len(queries) / len(probe)
        # The KD-tree is timed as it will run (its build is what choosing it costs anyway).
        start = time.perf_counter()
        tree = self._engine("kdtree")
        built = time.perf_counter() - start
        start = time.perf_counter()
        tree.search(probe, k, same_rows=False)
        estimates = {"kdtree": built + (time.perf_counter() - start) * scale}
        if estimates["kdtree"] >= GOOD_ENOUGH_SECONDS:
            # Brute-force engines cost rows x queries: timed on an index of at most SAMPLED_ROWS fitted rows and
            # scaled to all of them, so no full index is built only to be measured.
            brute = ["faiss" if faiss is not None else "sklearn"]
            brute += ["torch_gpu"] if torch.cuda.is_available() else []
            rows = self.n_samples_fit_
            sample = fit.X if rows <= SAMPLED_ROWS else fit.X[np.sort(rng.choice(rows, SAMPLED_ROWS, replace=False))]
            for name in brute:
                start = time.perf_counter()
                engine = ENGINES[name](sample, self._threads())
                built = time.perf_counter() - start
                start = time.perf_counter()
                engine.search(probe, min(k, len(sample)), same_rows=False)
                estimates[name] = (built + (time.perf_counter() - start) * scale) * rows / len(sample)
                if sample is fit.X:
                    fit.engines[name] = engine                  # the whole index: kept if it wins
        fit.chosen = min(estimates, key=estimates.get)
        for name in list(fit.engines):
            if name != fit.chosen:
                del fit.engines[name]                       # free the losers' indexes
        return fit.chosen, _("estimated {times}").format(
            times=", ".join(f"{name} {seconds:.2f} s" for name, seconds in estimates.items()))


@dataclass
class _Fit:
    """One fitted matrix: as given (``raw``, for scikit-learn), dense, its built engines and auto's choice."""

    raw: Any
    X: np.ndarray
    engines: dict[str, Any] = field(default_factory=dict)
    chosen: str | None = None


def _dense(X) -> np.ndarray:
    """``X`` as a C-contiguous float32 or float64 array, refusing NaN and infinity with a sentence."""
    if sparse.issparse(X):
        X = X.toarray()
    X = np.asarray(X)
    if X.dtype != np.float32:
        X = X.astype(np.float64, copy=False)
    X = np.ascontiguousarray(X)
    if X.ndim != 2:
        raise InvalidDataError(_("The nearest-neighbour search needs a 2-D feature matrix, but got {ndim} "
                                 "dimensions.").format(ndim=X.ndim))
    if X.size and not (np.isfinite(X.min()) and np.isfinite(X.max())):
        raise InvalidDataError(
            _("The nearest-neighbour search got missing (NaN) or infinite feature values. Fill or drop them "
              "first (recexp's samplers fill NaN with the training median; infinite values must be fixed in the "
              "data)."))
    return X


def _drop_self(distances: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove each fitted row from its own neighbour list (the last neighbour where it is not listed)."""
    own = indices == np.arange(len(indices))[:, None]
    own[~own.any(axis=1), -1] = True
    own &= np.cumsum(own, axis=1) == 1
    shape = (len(indices), indices.shape[1] - 1)
    return distances[~own].reshape(shape), indices[~own].reshape(shape)


def _rank(data: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest of each query's candidate rows by float64 distance, ties by row number."""
    diff = data[candidates].astype(np.float64) - queries[:, None, :].astype(np.float64)
    distances = np.sqrt(np.einsum("qcd,qcd->qc", diff, diff))
    order = np.lexsort((candidates, distances), axis=1)[:, :k]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(candidates, order, axis=1)


def _by_distance_then_index(distances: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((indices, distances), axis=1)
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(indices, order, axis=1)


def _float64_search(data: np.ndarray, centre: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact search by float64 brute force (centred), in query blocks of about 256 MB of distances."""
    points = data - centre
    norms = np.einsum("ij,ij->i", points, points)
    m = min(k + MARGIN, len(data))
    out_d, out_i = np.empty((len(queries), k)), np.empty((len(queries), k), dtype=np.intp)
    for part in _batches(len(queries), max(1, TORCH_CPU_BATCH_BYTES // (8 * len(data)))):
        q = queries[part] - centre
        squared = norms[None, :] - 2.0 * (q @ points.T)
        candidates = np.argpartition(squared, m - 1, axis=1)[:, :m] if m < len(data) else \
            np.broadcast_to(np.arange(len(data)), squared.shape).copy()
        out_d[part], out_i[part] = _rank(data, queries[part], candidates, k)
    return out_d, out_i


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class _Sklearn:
    """scikit-learn's ``NearestNeighbors`` as imbalanced-learn builds it (its answer, unchanged)."""

    def __init__(self, data, threads: int):
        self.finder = NearestNeighbors(n_jobs=threads).fit(data)

    def search(self, queries, k, same_rows):
        return self.finder.kneighbors(queries, n_neighbors=k)


class _KDTree:
    """SciPy's ``cKDTree``: exact float64 distances, queries visited in spatial order for cache locality."""

    def __init__(self, data, threads: int):
        self.data64 = data.astype(np.float64, copy=False)
        self.threads = threads
        # leafsize 40: on 3.6M rows x 25 count features, 14% less build and 3% less query CPU time than 16
        self.tree = cKDTree(self.data64, leafsize=40, balanced_tree=False, compact_nodes=False)

    def search(self, queries, k, same_rows):
        if same_rows:
            order = self.tree.indices                       # the fitted rows in leaf order
        elif len(queries) > 20_000:
            order = cKDTree(queries, leafsize=128, balanced_tree=False, compact_nodes=False).indices   # only an order
        else:
            order = np.arange(len(queries))
        distances, indices = self.tree.query(queries[order].astype(np.float64, copy=False), k=k, workers=self.threads)
        distances, indices = distances.reshape(len(order), k), indices.reshape(len(order), k)
        out_d, out_i = np.empty_like(distances), np.empty((len(order), k), dtype=np.intp)
        out_d[order], out_i[order] = _by_distance_then_index(distances, indices.astype(np.intp))
        return out_d, out_i


class _FaissFlat:
    """FAISS ``IndexFlatL2`` (brute force in float32), candidates ranked again in float64.

    FAISS's float32 squared distances can be off by about ``(features + 2) * 2**-24 * (|q|^2 + |x|^2)``, which
    on count features is more than the gap between close neighbours. A query is *certified* when its k-th
    float64 distance plus twice that bound stays below the float32 distance of the last candidate (then no
    row outside the candidates can be nearer); the others are searched again in float64 (``certify``).
    """

    certify = True

    batch = 16_384

    def __init__(self, data, threads: int):
        self.data, self.threads = data, threads
        # Centred: FAISS computes |x|^2 - 2 x.y + |y|^2 in float32, whose rounding grows with the norms.
        self.centre = data.mean(axis=0, dtype=np.float64)
        self.index = self._index(data.shape[1])
        centred = self._centred(data)
        self.index.add(centred)
        self.max_norm = float(np.einsum("ij,ij->i", centred, centred, dtype=np.float64).max()) if len(data) else 0.0
        self.recomputed = 0                                 # queries searched again in float64

    def _centred(self, rows):
        return np.ascontiguousarray(rows - self.centre, dtype=np.float32)

    def _index(self, dim: int):
        return faiss.IndexFlatL2(dim)

    def search(self, queries, k, same_rows):
        faiss.omp_set_num_threads(self.threads)
        m = min(k + MARGIN, len(self.data))
        out_d, out_i = np.empty((len(queries), k)), np.empty((len(queries), k), dtype=np.intp)
        for part in _batches(len(queries), self.batch):
            centred = self._centred(queries[part])
            approximate, candidates = self.index.search(centred, m)
            candidates = candidates.astype(np.intp)
            missing = candidates < 0                        # HNSW may find fewer than m rows
            if missing.any():
                candidates = np.where(missing, candidates.max(axis=1, keepdims=True), candidates)
            distances, indices = _rank(self.data, queries[part], candidates, k)
            if self.certify and m < len(self.data):
                norms = np.einsum("ij,ij->i", centred, centred, dtype=np.float64)
                bound = (self.data.shape[1] + 2) * 2.0**-23 * (norms + self.max_norm)
                doubtful = np.flatnonzero(distances[:, -1] ** 2 + 2 * bound >= approximate[:, -1])
                if len(doubtful):
                    self.recomputed += len(doubtful)
                    distances[doubtful], indices[doubtful] = _float64_search(self.data, self.centre,
                                                                             queries[part][doubtful], k)
            out_d[part], out_i[part] = distances, indices
        return out_d, out_i


class _FaissHNSW(_FaissFlat):
    """FAISS HNSW graph (approximate), candidates ranked again in float64; recall measured on a sample."""

    certify = False

    def _index(self, dim: int):
        index = faiss.IndexHNSWFlat(dim, 32)
        index.hnsw.efConstruction = 80
        return index

    def search(self, queries, k, same_rows):
        self.index.hnsw.efSearch = max(64, 4 * (k + MARGIN))
        return super().search(queries, k, same_rows)

    def recall(self, queries, k, indices, distances) -> float:
        """Share of returned neighbours within the exact k-th distance, over up to 1,000 sampled queries."""
        rows = np.random.default_rng(0).choice(len(queries), min(PROBE_QUERIES, len(queries)), replace=False)
        exact_d, _ = _FaissFlat(self.data, self.threads).search(queries[rows], k, same_rows=False)
        kth = exact_d[:, -1:] * (1 + 1e-9) + 1e-12
        return float(np.mean(distances[rows] <= kth))


class _Torch:
    """Batched squared distances and ``topk`` in PyTorch (float64: in float32, ``|x|^2 - 2 x.y + |y|^2`` on
    count features of a few thousand lost the nearest rows), candidates ranked again on the CPU."""

    def __init__(self, data, threads: int, device: str = "cpu"):
        self.data, self.device = data, torch.device(device)
        self.centre = data.mean(axis=0, dtype=np.float64)
        self.points = torch.from_numpy(data - self.centre).to(self.device)
        self.norms = (self.points * self.points).sum(dim=1)

    def search(self, queries, k, same_rows):
        m = min(k + MARGIN, len(self.data))
        budget = (torch.cuda.mem_get_info(self.device)[0] // 4 if self.device.type == "cuda"
                  else TORCH_CPU_BATCH_BYTES)
        size = max(1, int(budget // (8 * max(len(self.data), 1))))
        out_d, out_i = np.empty((len(queries), k)), np.empty((len(queries), k), dtype=np.intp)
        with torch.no_grad():
            for part in _batches(len(queries), size):
                q = torch.from_numpy(queries[part] - self.centre).to(self.device)
                squared = torch.addmm(self.norms[None, :], q, self.points.T, alpha=-2.0)
                candidates = squared.topk(m, dim=1, largest=False).indices.cpu().numpy().astype(np.intp)
                out_d[part], out_i[part] = _rank(self.data, queries[part], candidates, k)
        return out_d, out_i


ENGINES = {
    "sklearn": _Sklearn,
    "kdtree": _KDTree,
    "faiss": _FaissFlat,
    "faiss_hnsw": _FaissHNSW,
    "torch": _Torch,
    "torch_gpu": lambda data, threads: _Torch(data, threads, "cuda"),
}


def describe_searches(searches: list[Search]) -> str | None:
    """One sentence on the neighbour searches a sampler made (engines, time, auto's reasons, recall)."""
    if not searches:
        return None
    used = dict.fromkeys(s.backend for s in searches)
    seconds = sum(s.seconds for s in searches)
    text = ngettext("Nearest neighbours: {n} search with {engines} ({seconds:.2f} s in all, choosing included)",
                    "Nearest neighbours: {n} searches with {engines} ({seconds:.2f} s in all, choosing included)",
                    len(searches)).format(n=len(searches), engines=", ".join(used), seconds=seconds)
    reasons = dict.fromkeys(_("{queries} queries over {rows} rows: {engine} ({reason})").format(
        queries=format_integer(s.queries), rows=format_integer(s.fitted), engine=s.backend, reason=s.reason)
        for s in searches if s.reason and s.reason != "small search")
    if reasons:
        joined = functools.reduce(lambda first, second: _("{first}; {second}").format(first=first, second=second),
                                  reasons)                 # a marked template keeps each reason's recipe
        text = _("{text}; auto measured {reasons}").format(text=text, reasons=joined)
    recalls = [s.recall for s in searches if s.recall is not None]
    if recalls:
        text = _("{text}; approximate search, recall@k {recall:.4f} (lowest over the searches, measured on up to "
                 "{queries:,} sampled queries against an exact search)").format(text=text, recall=min(recalls),
                                                                               queries=PROBE_QUERIES)
    return _("{text}.").format(text=text)
