"""Torch building blocks shared by the models: input encoding, MLPs, FM, cross layers, target attention.

Every model's ``forward`` takes the same three tensors, built once per dataset by
:func:`recexp.models.base.to_tensors`:

* ``numeric``: float32 ``(B, P)``, raw values with NaN where missing (imputed and standardised inside
  the model by :class:`NumericNormalizer`, whose statistics are fitted on the training split only);
* ``categorical``: int64 ``(B, C)`` codes, ``0`` = missing/unseen;
* ``sequence``: int64 ``(B, G, L)`` behaviour-sequence codes, one row per group (item, category,
  behaviour...), most recent first, ``0`` = padding.

Missing parts are zero-width tensors, so no ``None`` checks are needed in the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class InputSpec:
    """Shapes and vocabularies a model is built for; JSON-able, stored in checkpoints."""

    n_numeric: int
    categorical_sizes: tuple[int, ...]      # embedding rows per categorical column (vocab + 1)
    sequence_sizes: tuple[int, ...]         # embedding rows per sequence group (vocab + 1)
    sequence_length: int
    n_classes: int
    #: per sequence group, the categorical column holding the sample's own value of that attribute
    #: (e.g. group ``hist_item`` <-> column ``item``: same vocabulary), or -1; DIN embeds the target with it.
    sequence_targets: tuple[int, ...] = ()

    @property
    def n_categorical(self) -> int:
        return len(self.categorical_sizes)

    @property
    def n_groups(self) -> int:
        return len(self.sequence_sizes)

    def to_dict(self) -> dict:
        return {"n_numeric": self.n_numeric, "categorical_sizes": list(self.categorical_sizes),
                "sequence_sizes": list(self.sequence_sizes), "sequence_length": self.sequence_length,
                "n_classes": self.n_classes, "sequence_targets": list(self.sequence_targets)}

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        return cls(n_numeric=int(data["n_numeric"]),
                   categorical_sizes=tuple(int(v) for v in data["categorical_sizes"]),
                   sequence_sizes=tuple(int(v) for v in data["sequence_sizes"]),
                   sequence_length=int(data["sequence_length"]), n_classes=int(data["n_classes"]),
                   sequence_targets=tuple(int(v) for v in data.get("sequence_targets", ())))


class NumericNormalizer(nn.Module):
    """Median imputation then standardisation, with statistics held as buffers (saved in the state_dict)."""

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("median", torch.zeros(n_features))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    @torch.no_grad()
    def fit(self, values: torch.Tensor) -> NumericNormalizer:
        """Fit median, mean and standard deviation on training values ``(N, P)`` (NaN = missing)."""
        if values.shape[1] == 0:
            return self
        median = torch.nanmedian(values, dim=0).values
        median = torch.where(torch.isnan(median), torch.zeros_like(median), median)
        filled = torch.where(torch.isnan(values), median, values)
        std = filled.std(dim=0, unbiased=False)
        self.median.copy_(median)
        self.mean.copy_(filled.mean(dim=0))
        self.std.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))
        return self

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        values = torch.where(torch.isnan(values), self.median, values)
        return (values - self.mean) / self.std


class FeatureInput(nn.Module):
    """Turns the three input tensors into normalised numbers and embeddings.

    ``forward`` returns ``(numeric (B, P), categorical (B, C, D), sequence (B, G, L, D), mask (B, L))``;
    ``mask`` is True where any group has a non-padding code.
    """

    def __init__(self, spec: InputSpec, embedding_dim: int):
        super().__init__()
        self.spec = spec
        self.embedding_dim = embedding_dim
        self.normalizer = NumericNormalizer(spec.n_numeric)
        self.categorical = nn.ModuleList(nn.Embedding(size, embedding_dim) for size in spec.categorical_sizes)
        self.sequence = nn.ModuleList(nn.Embedding(size, embedding_dim, padding_idx=0)
                                      for size in spec.sequence_sizes)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor, sequence: torch.Tensor):
        numbers = self.normalizer(numeric)
        batch = numeric.shape[0]
        if self.categorical:
            cat = torch.stack([emb(categorical[:, i]) for i, emb in enumerate(self.categorical)], dim=1)
        else:
            cat = numbers.new_zeros(batch, 0, self.embedding_dim)
        if self.sequence:
            seq = torch.stack([emb(sequence[:, g]) for g, emb in enumerate(self.sequence)], dim=1)
            mask = (sequence != 0).any(dim=1)
        else:
            seq = numbers.new_zeros(batch, 0, 0, self.embedding_dim)
            mask = torch.zeros(batch, 0, dtype=torch.bool, device=numeric.device)
        return numbers, cat, seq, mask

    @property
    def flat_dim(self) -> int:
        """Width of :meth:`flat` output."""
        return self.spec.n_numeric + (self.spec.n_categorical + self.spec.n_groups) * self.embedding_dim

    @staticmethod
    def pool(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked mean over sequence positions: ``(B, G, L, D)`` -> ``(B, G, D)`` (zeros for empty rows)."""
        weights = mask.to(seq.dtype).unsqueeze(1).unsqueeze(-1)
        total = (seq * weights).sum(dim=2)
        count = weights.sum(dim=2).clamp_min(1.0)
        return total / count

    def flat(self, numeric, categorical, sequence) -> torch.Tensor:
        """Numbers, categorical embeddings and mean-pooled sequence embeddings side by side: ``(B, flat_dim)``."""
        numbers, cat, seq, mask = self(numeric, categorical, sequence)
        pooled = self.pool(seq, mask)
        return torch.cat([numbers, cat.flatten(1), pooled.flatten(1)], dim=1)


class LinearTerm(nn.Module):
    """A linear model over numbers, one-hot categoricals and bag-of-codes sequences, with ``out`` outputs.

    One-hot weights are embedding rows of width ``out``: the same function as a linear layer over
    one-hot columns, without materialising them. ``numbers`` must already be normalised.
    """

    def __init__(self, spec: InputSpec, out: int, use_sequence: bool = True):
        super().__init__()
        self.numeric = nn.Linear(spec.n_numeric, out) if spec.n_numeric else None
        self.categorical = nn.ModuleList(nn.Embedding(size, out) for size in spec.categorical_sizes)
        self.sequence = nn.ModuleList(nn.Embedding(size, out, padding_idx=0) for size in spec.sequence_sizes) \
            if use_sequence else nn.ModuleList()
        self.bias = nn.Parameter(torch.zeros(out))
        for emb in [*self.categorical, *self.sequence]:
            nn.init.zeros_(emb.weight)

    def forward(self, numbers, categorical, sequence) -> torch.Tensor:
        out = self.bias.expand(numbers.shape[0], -1)
        if self.numeric is not None:
            out = out + self.numeric(numbers)
        for i, emb in enumerate(self.categorical):
            out = out + emb(categorical[:, i])
        for g, emb in enumerate(self.sequence):
            codes = sequence[:, g]
            count = (codes != 0).sum(dim=1, keepdim=True).clamp_min(1)
            out = out + emb(codes).sum(dim=1) / count
        return out


def mlp(in_dim: int, hidden_dim: int, n_layers: int, dropout: float) -> tuple[nn.Sequential, int]:
    """``n_layers`` of Linear -> ReLU -> Dropout; returns the block and its output width."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden_dim), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden_dim
    return nn.Sequential(*layers), width


class FactorizationMachine(nn.Module):
    """Second-order FM interaction of field embeddings ``(B, F, D)`` -> ``(B, D)`` (Rendle 2010)."""

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        square_of_sum = fields.sum(dim=1).pow(2)
        sum_of_square = fields.pow(2).sum(dim=1)
        return 0.5 * (square_of_sum - sum_of_square)


class CrossNetV2(nn.Module):
    """DCN-v2 cross layers: ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`` (Wang et al. 2021), full-rank ``W``."""

    def __init__(self, dim: int, n_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class TargetAttention(nn.Module):
    """DIN's activation unit (Zhou et al. 2018): scores each past behaviour against the target.

    The score of key ``k`` for query ``q`` is an MLP of ``[q, k, q - k, q * k]``; scores are
    soft-maxed over the non-padding positions (padding gets weight 0, a row without history gets
    all zeros). Returns the weighted sum of keys ``(B, E)`` and the weights ``(B, L)``.
    """

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(4 * dim, hidden_dim), nn.PReLU(), nn.Linear(hidden_dim, 1))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor):
        q = query.unsqueeze(1).expand_as(keys)
        scores = self.score(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1) * mask.to(scores.dtype)
        return (weights.unsqueeze(-1) * keys).sum(dim=1), weights
