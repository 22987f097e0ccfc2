"""Privacy of generated rows: differentially private training (DP-SGD with Opacus) and id de-identification.

**Differential privacy.** A neural generator given ``epsilon`` trains the networks that read real rows
(the GAN's discriminator, the VAE's encoder and decoder) with DP-SGD (Abadi et al., 2016) through
Opacus: each step draws a Poisson sample of the training rows (every row independently, with
probability ``batch_size / rows``), clips every row's gradient to ``max_grad_norm`` and adds Gaussian
noise. The noise multiplier is calibrated by Opacus so that the budget ``(epsilon, delta)`` is spent
exactly after ``epochs`` epochs; the accountant's figure after every epoch is kept, and training
stops when it reaches the budget. ``delta`` defaults to ``1 / rows``. The GAN's generator never sees
a real row (it learns only through the private discriminator), so its weights are private by
post-processing.

What the epsilon does **not** cover, and the report says so: the column transforms fitted on the real
rows before training (value ranges and modes of numeric columns, the category lists), the per-class
row counts (used to draw classes), and the behaviour-sequence columns, which a generated row takes
from its nearest real row (:mod:`recexp.synthesis.base`). Opacus' noise comes from torch's ordinary
generator (``secure_mode`` off): fine for measuring the privacy-utility trade-off, not a hardened
release mechanism.

**Ids.** The user and item ids (``user_id`` / ``item_id`` meta columns) of generated rows are never the
real ids: ``ids="new"`` gives each generated row a fresh id (``synthetic-user-1``, ...), ``ids="hash"`` a
salted SHA-256 of the id of the real row it took its sequences from (rows with the same source user
share a pseudonym within one fit); the salt is drawn fresh for every fit and never stored, so the
hashes cannot be recomputed from guessed ids. Where the real ids are integers (the bundled logs), the
new ids are integers too, below every real id (``-1, -2, ...`` when the real ones are non-negative),
and a hash is the negative integer of its first 15 hex digits, so the column keeps its type.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from recexp.dataset import ITEM, USER
from recexp.errors import InvalidParameterError
from recexp.i18n import N_, _

#: The parameters that switch on and shape DP-SGD training (neural generators only).
PRIVACY_PARAMS = ("epsilon", "delta", "max_grad_norm")
#: Id policies of generated rows -> what the report says.
ID_POLICIES = {
    "new": N_("new ids: every generated row has a fresh user and item id, unrelated to any real one"),
    "hash": N_("salted hashes: the ids of the real row a generated row took its sequences from, hashed with a "
               "secret salt drawn for this fit and never stored"),
    "none": N_("the training rows have no user or item id columns, so generated rows have none either"),
}
#: The meta columns that identify a user or an item.
ID_COLUMNS = (USER, ITEM)
#: What an epsilon does not cover (the report's note under DP).
PRIVACY_SCOPE = N_("The epsilon covers the trained network weights only: the column transforms (value ranges, "
                   "modes, category lists), the per-class row counts and the behaviour sequences copied from "
                   "real rows are not protected by it.")


def refuse_privacy(owner: str, names: Any) -> None:
    """Raise the sentence for differential-privacy parameters given to something without a neural generator."""
    asked = [n for n in PRIVACY_PARAMS if n in names]
    if asked:
        raise InvalidParameterError(
            _("{owner} has no neural generator, so it cannot be trained with differential privacy ({given} "
              "given). Use the gan or vae generator for DP-SGD, or drop {first}.").format(
                owner=owner, given=", ".join(asked), first=asked[0]))


class PrivateTraining:
    """Opacus' DP-SGD around one module and its optimizer, with the Poisson sampler of the training rows.

    Built by :meth:`make`; ``batches()`` yields the row indices of each step's Poisson sample (one
    pass of the loader is one epoch), ``spent()`` is the accountant's epsilon so far, ``summary()``
    the figures the report stores, and ``release()`` unwraps the module once training is done.
    """

    def __init__(self, engine, module: torch.nn.Module, optimizer, loader: DataLoader,
                 epsilon: float, delta: float, max_grad_norm: float, n_rows: int):
        self.engine = engine
        self.module = module
        self.optimizer = optimizer
        self.loader = loader
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.n_rows = n_rows
        self.epochs_run = 0

    @classmethod
    def make(cls, module: torch.nn.Module, optimizer, *, n_rows: int, batch_size: int, epochs: int, epsilon: float,
             delta: float | None, max_grad_norm: float, seed: int) -> PrivateTraining:
        """Wrap ``module`` and ``optimizer`` for DP-SGD with noise calibrated to spend ``epsilon`` in ``epochs``."""
        if delta is not None and delta > 1.0 / n_rows:
            raise InvalidParameterError(
                _("delta={delta} is above 1 / training rows ({limit}): with such a delta the guarantee allows "
                  "publishing a whole row. Set delta to at most {limit}, or leave it unset (1 / rows).").format(
                    delta=delta, limit=f"{1.0 / n_rows:.3g}"))
        delta = 1.0 / n_rows if delta is None else float(delta)
        try:
            # Imported when DP training starts, not with recexp: importing Opacus takes seconds (it loads its
            # accountants' numerical stack), which every CLI call, worker and page would otherwise pay.
            from opacus import PrivacyEngine
        except ImportError:                     # pragma: no cover - opacus is a pinned requirement
            raise InvalidParameterError(
                _("Differential privacy (epsilon) needs the opacus package: pip install -r requirements.txt.")
            ) from None
        indices = TensorDataset(torch.arange(n_rows))
        loader = DataLoader(indices, batch_size=min(batch_size, n_rows),
                            generator=torch.Generator().manual_seed(seed))
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            # Opacus warns that secure_mode is off (the module docstring says so); its PRV accountant takes
            # log(1 - q), infinite where every row is in every batch (q = 1), which it handles
            warnings.simplefilter("ignore", UserWarning)
            engine = PrivacyEngine()
            try:
                module, optimizer, loader = engine.make_private_with_epsilon(
                    module=module, optimizer=optimizer, data_loader=loader, target_epsilon=float(epsilon),
                    target_delta=delta, epochs=epochs, max_grad_norm=float(max_grad_norm))
            except ValueError:                          # Opacus: no noise multiplier reaches so small a budget
                raise InvalidParameterError(
                    _("epsilon={epsilon} is too small a budget for {epochs} epochs over {rows} rows: no amount of "
                      "noise keeps DP-SGD within it. Raise epsilon, or train fewer epochs.").format(
                        epsilon=epsilon, epochs=epochs, rows=n_rows)) from None
        return cls(engine, module, optimizer, loader, float(epsilon), delta, float(max_grad_norm), n_rows)

    def batches(self):
        """Row indices of every step of one epoch (Poisson samples; a batch may be empty)."""
        for (rows,) in self.loader:
            yield rows
        self.epochs_run += 1

    def spent(self) -> float:
        """Epsilon spent so far, by Opacus' accountant at ``delta``."""
        if not self.engine.accountant.history:
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(self.engine.get_epsilon(self.delta))

    def exhausted(self) -> bool:
        """Whether the budget is spent: one more epoch of the same steps would take epsilon past it."""
        history = self.engine.accountant.history
        if not history:
            return False
        trial = copy.deepcopy(self.engine.accountant)
        noise_multiplier, sample_rate, _steps = history[-1]
        trial.history.append((noise_multiplier, sample_rate, len(self.loader)))
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(trial.get_epsilon(self.delta)) > self.epsilon

    def summary(self) -> dict[str, Any]:
        """Requested and spent epsilon, delta, the noise multiplier and the sampling figures."""
        return {"epsilon_requested": self.epsilon, "epsilon": self.spent(), "delta": self.delta,
                "noise_multiplier": float(self.optimizer.noise_multiplier), "max_grad_norm": self.max_grad_norm,
                "sample_rate": float(self.loader.sample_rate), "epochs": self.epochs_run,
                "steps": int(sum(entry[-1] for entry in self.engine.accountant.history)), "accountant": self.engine.accountant.mechanism(), "mechanism": "DP-SGD (Opacus)"}

    def release(self) -> torch.nn.Module:
        """The trained module without Opacus' hooks (the wrapper is discarded)."""
        return self.module.to_standard_module()


# --- ids --------------------------------------------------------------------------------------
def integer_ids(values: pd.Series) -> bool:
    """Whether an id column holds integers (its categories, for a categorical column)."""
    dtype = values.cat.categories.dtype if isinstance(values.dtype, pd.CategoricalDtype) else values.dtype
    return pd.api.types.is_integer_dtype(dtype)


def id_floor(values: pd.Series) -> int:
    """The largest integer at or below 0 and every real id: new integer ids are counted down from below it."""
    real = values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else values.dropna()
    return int(min(0, real.min())) if len(real) else 0


def hashed_ids(values: pd.Series, salt: bytes) -> np.ndarray:
    """The salted SHA-256 of every value: ``h-`` plus 16 hex digits, or, for integer ids, minus the integer of
    the first 15 hex digits, minus one (missing ids stay missing)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    digests = [hashlib.sha256(salt + str(u).encode()).hexdigest() for u in uniques]
    if integer_ids(values):
        hashed = np.array([-int(d[:15], 16) - 1 for d in digests], dtype=np.int64)
        out = np.zeros(len(codes), dtype=np.int64)
        out[codes >= 0] = hashed[codes[codes >= 0]]
        return out
    hashed = np.array([f"h-{d[:16]}" for d in digests], dtype=object)
    out = np.full(len(codes), None, dtype=object)
    out[codes >= 0] = hashed[codes[codes >= 0]]
    return out


def fresh_salt() -> bytes:
    """A secret salt for one fit (never stored)."""
    return secrets.token_bytes(16)


def new_ids(column: str, start: int, n: int, floor: int | None = None) -> np.ndarray:
    """``synthetic-user-<k>`` / ``synthetic-item-<k>`` for ``k = start + 1 .. start + n``; with an integer
    ``floor`` (integer ids, :func:`id_floor`), the integers ``floor - k``."""
    if floor is not None:
        return floor - np.arange(start + 1, start + n + 1, dtype=np.int64)
    kind = "user" if column == USER else "item"
    return np.array([f"synthetic-{kind}-{k}" for k in range(start + 1, start + n + 1)], dtype=object)


def replace_ids(frame: pd.DataFrame, rows: np.ndarray, ids: dict[str, np.ndarray]) -> pd.DataFrame:
    """``frame`` with ``ids[column]`` written into ``column`` at the positions ``rows`` (categorical
    columns get the new ids as extra categories; other columns become text)."""
    frame = frame.copy()
    for column, values in ids.items():
        if column not in frame.columns or not len(rows):
            continue
        current = frame[column]
        if isinstance(current.dtype, pd.CategoricalDtype):
            old = current.cat.categories
            added = pd.Index(pd.unique(pd.Series(values).dropna()))
            categories = old.append(added[~added.isin(old)])
            codes = current.cat.codes.to_numpy().astype(np.int64)      # old categories keep their positions
            codes[rows] = categories.get_indexer(pd.Index(values))
            frame[column] = pd.Categorical.from_codes(codes, categories=categories)
        else:
            text = current.astype(object).to_numpy().copy()
            text[rows] = values
            frame[column] = text
    return frame


__all__ = ["ID_COLUMNS", "ID_POLICIES", "PRIVACY_PARAMS", "PRIVACY_SCOPE", "PrivateTraining", "fresh_salt",
           "hashed_ids", "id_floor", "integer_ids", "new_ids", "refuse_privacy", "replace_ids"]
