"""Next-item models: a two-tower model and a SASRec-style self-attentive sequence model.

Both score every item of the catalogue for a user's history: ``forward(numeric, categorical, sequence)``
returns ``(B, K)`` logits over the ``next_item`` task's label space (``K`` = item vocabulary + 1, code 0
being rare/missing items), so the trainer's softmax cross-entropy over those logits is the full-softmax
preference model ``p(i | u)``; the ``sampled_softmax`` / ``popularity_sampled`` losses of
:mod:`recexp.models.trainer` train the same logits against a sample of negative items instead.

The history is the task's sequence groups, most recent first, ``0`` = padding: ``hist_item`` (first;
its codes are the label codes), then optionally ``hist_category`` and ``hist_behavior``.
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.models.base import Model
from recexp.models.modules import InputSpec
from recexp.models.zoo import DROPOUT, EMBEDDING_DIM, HIDDEN_DIM
from recexp.params import Int


def _check_item_history(name: str, spec: InputSpec) -> None:
    """The first sequence group must hold the same item codes as the labels (the next-item task's layout)."""
    if not spec.sequence_sizes or spec.sequence_sizes[0] != spec.n_classes:
        raise InvalidDataError(
            _("The {name} model ranks items from the history of earlier items, but this dataset's first sequence "
              "group does not hold the label's item codes. Build the 'next_item' task for it.").format(name=name))


class _HistoryEmbedding(nn.Module):
    """Sum of the item, category and behaviour embeddings of every history position: ``(B, L, D)`` and mask."""

    def __init__(self, spec: InputSpec, dim: int, items: nn.Embedding | None = None):
        super().__init__()
        self.items = items if items is not None else nn.Embedding(spec.sequence_sizes[0], dim, padding_idx=0)
        self.others = nn.ModuleList(nn.Embedding(size, dim, padding_idx=0) for size in spec.sequence_sizes[1:])

    def forward(self, sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.items(sequence[:, 0])
        for g, table in enumerate(self.others, start=1):
            embedded = embedded + table(sequence[:, g])
        return embedded, sequence[:, 0] != 0


class _TwoTowerNet(nn.Module):
    def __init__(self, spec: InputSpec, dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.history = _HistoryEmbedding(spec, dim)
        self.user_tower = nn.Sequential(nn.Linear(2 * dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden_dim, dim))
        self.item_embedding = nn.Embedding(spec.n_classes, dim)
        self.item_tower = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim))

    def user_vectors(self, sequence: torch.Tensor) -> torch.Tensor:
        """The user tower: masked mean of the history and its most recent position -> ``(B, D)``."""
        embedded, mask = self.history(sequence)
        weights = mask.to(embedded.dtype).unsqueeze(-1)
        mean = (embedded * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return self.user_tower(torch.cat([mean, embedded[:, 0]], dim=1))

    def item_vectors(self) -> torch.Tensor:
        """The item tower of every item: ``(K, D)``."""
        items = self.item_embedding.weight
        return items + self.item_tower(items)

    def forward(self, numeric, categorical, sequence):
        return self.user_vectors(sequence) @ self.item_vectors().T


class TwoTower(Model):
    """Two-tower retrieval model: a user-history tower and an item tower, scored by their dot product."""

    name = "two_tower"
    description = "Two-tower model (next-item task): a user-history tower and an item tower, dot product."
    requires_sequence = True
    task_kinds = ("ranking",)
    params = {"embedding_dim": EMBEDDING_DIM, "hidden_dim": HIDDEN_DIM, "dropout": DROPOUT}

    def __init__(self, embedding_dim=64, hidden_dim=128, dropout=0.1):
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout

    def _build(self, spec):
        _check_item_history(self.name, spec)
        return _TwoTowerNet(spec, self.embedding_dim, self.hidden_dim, self.dropout)


class _SASRecNet(nn.Module):
    def __init__(self, spec: InputSpec, dim: int, n_layers: int, n_heads: int, dropout: float):
        super().__init__()
        self.items = nn.Embedding(spec.n_classes, dim, padding_idx=0)     # input and output share it (SASRec)
        self.history = _HistoryEmbedding(spec, dim, items=self.items)
        self.positions = nn.Embedding(max(spec.sequence_length, 1), dim)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, n_heads, dim_feedforward=dim, dropout=dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def encode(self, sequence: torch.Tensor) -> torch.Tensor:
        """The history in time order through the attention blocks; the most recent position's output ``(B, D)``.

        Every prefix of a user's events is its own training row, so only the last position is read and no
        causal mask is needed (the target is never in the input). A row without any history keeps its most
        recent (padding) position unmasked, so attention stays defined.
        """
        embedded, mask = self.history(sequence.flip(-1))          # oldest first, most recent last
        length = embedded.shape[1]
        embedded = embedded * embedded.shape[-1] ** 0.5 + self.positions.weight[:length]
        padding = ~mask
        padding[:, -1] = False
        hidden = self.encoder(self.dropout(embedded), src_key_padding_mask=padding)
        return self.norm(hidden[:, -1])

    def forward(self, numeric, categorical, sequence):
        return self.encode(sequence) @ self.items.weight.T


class SASRec(Model):
    """SASRec-style self-attentive sequence model (Kang & McAuley 2018): attention over the history, dot
    product of its last position with the (shared) item embeddings."""

    name = "sasrec"
    description = "SASRec-style self-attention over the user's history (next-item task)."
    requires_sequence = True
    task_kinds = ("ranking",)
    params = {"embedding_dim": EMBEDDING_DIM, "n_layers": Int(1, 8, help="Self-attention blocks."),
              "n_heads": Int(1, 16, help="Attention heads per block (must divide embedding_dim)."),
              "dropout": DROPOUT}

    def __init__(self, embedding_dim=64, n_layers=2, n_heads=2, dropout=0.2):
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout

    def _build(self, spec):
        _check_item_history(self.name, spec)
        if self.embedding_dim % self.n_heads:
            raise InvalidParameterError(
                _("SASRec: n_heads ({heads}) must divide embedding_dim ({dim}). Change one of them, e.g. "
                  "embedding_dim=64 with n_heads=2.").format(heads=self.n_heads, dim=self.embedding_dim))
        return _SASRecNet(spec, self.embedding_dim, self.n_layers, self.n_heads, self.dropout)


__all__ = ["SASRec", "TwoTower"]
