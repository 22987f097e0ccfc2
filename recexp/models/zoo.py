"""The concrete models: logistic regression, MLP, Wide&Deep, DeepFM, DCN-v2 and DIN.

Each is a :class:`~recexp.models.base.Model` (parameter spec + ``_build``) and an ``nn.Module`` whose
``forward(numeric, categorical, sequence)`` returns ``(B, K)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.models.base import Model
from recexp.models.modules import (CrossNetV2, FactorizationMachine, FeatureInput, InputSpec, LinearTerm,
                                   NumericNormalizer, TargetAttention, mlp)
from recexp.params import Bool, Float, Int

EMBEDDING_DIM = Int(1, 256, log=True, help="Width of every embedding vector (categorical codes, sequence items).")
HIDDEN_DIM = Int(1, 4096, log=True, help="Units in each hidden layer of the deep part.")
N_LAYERS = Int(1, 8, help="Hidden layers in the deep part.")
DROPOUT = Float(0.0, 1.0, high_open=True, help="Share of hidden units dropped during training.")


# --- logistic regression --------------------------------------------------------------------------

class _LogisticNet(nn.Module):
    def __init__(self, spec: InputSpec, use_sequence: bool):
        super().__init__()
        self.normalizer = NumericNormalizer(spec.n_numeric)
        self.linear = LinearTerm(spec, spec.n_classes, use_sequence=use_sequence)

    def forward(self, numeric, categorical, sequence):
        return self.linear(self.normalizer(numeric), categorical, sequence)


class LogisticRegression(Model):
    """Multinomial logistic regression on standardised numbers and one-hot codes (the linear baseline)."""

    name = "logreg"
    description = "Logistic regression: linear in standardised numbers and one-hot codes."
    params = {"use_sequence": Bool(help="Add the behaviour sequence as a bag of codes (mean of one-hots).")}

    def __init__(self, use_sequence=True):
        self.use_sequence = use_sequence

    def _build(self, spec):
        return _LogisticNet(spec, self.use_sequence)


# --- MLP ------------------------------------------------------------------------------------------

class _MLPNet(nn.Module):
    def __init__(self, spec: InputSpec, embedding_dim, hidden_dim, n_layers, dropout):
        super().__init__()
        self.features = FeatureInput(spec, embedding_dim)
        self.body, width = mlp(self.features.flat_dim, hidden_dim, n_layers, dropout)
        self.head = nn.Linear(width, spec.n_classes)

    def forward(self, numeric, categorical, sequence):
        return self.head(self.body(self.features.flat(numeric, categorical, sequence)))


class MLP(Model):
    """Embeddings + mean-pooled sequence embeddings + standardised numbers into a ReLU MLP."""

    name = "mlp"
    description = "Multi-layer perceptron over embeddings and standardised numbers."
    params = {"embedding_dim": EMBEDDING_DIM, "hidden_dim": HIDDEN_DIM, "n_layers": N_LAYERS, "dropout": DROPOUT}

    def __init__(self, embedding_dim=16, hidden_dim=128, n_layers=2, dropout=0.1):
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.dropout = dropout

    def _build(self, spec):
        return _MLPNet(spec, self.embedding_dim, self.hidden_dim, self.n_layers, self.dropout)


# --- Wide & Deep ----------------------------------------------------------------------------------

class _WideDeepNet(_MLPNet):
    def __init__(self, spec: InputSpec, embedding_dim, hidden_dim, n_layers, dropout):
        super().__init__(spec, embedding_dim, hidden_dim, n_layers, dropout)
        self.wide = LinearTerm(spec, spec.n_classes)

    def forward(self, numeric, categorical, sequence):
        numbers, cat, seq, mask = self.features(numeric, categorical, sequence)
        deep_in = torch.cat([numbers, cat.flatten(1), FeatureInput.pool(seq, mask).flatten(1)], dim=1)
        return self.head(self.body(deep_in)) + self.wide(numbers, categorical, sequence)


class WideDeep(MLP):
    """Wide & Deep (Cheng et al. 2016): a linear model on one-hot codes plus an MLP on embeddings."""

    name = "wide_deep"
    description = "Wide & Deep: linear (memorisation) plus MLP (generalisation)."

    def _build(self, spec):
        return _WideDeepNet(spec, self.embedding_dim, self.hidden_dim, self.n_layers, self.dropout)


# --- DeepFM ---------------------------------------------------------------------------------------

class _DeepFMNet(nn.Module):
    def __init__(self, spec: InputSpec, embedding_dim, hidden_dim, n_layers, dropout):
        super().__init__()
        self.features = FeatureInput(spec, embedding_dim)
        self.numeric_fields = nn.Parameter(torch.randn(spec.n_numeric, embedding_dim) * 0.01)
        self.first_order = LinearTerm(spec, spec.n_classes)
        self.fm = FactorizationMachine()
        self.fm_head = nn.Linear(embedding_dim, spec.n_classes)
        n_fields = spec.n_numeric + spec.n_categorical + spec.n_groups
        self.body, width = mlp(n_fields * embedding_dim, hidden_dim, n_layers, dropout)
        self.head = nn.Linear(width, spec.n_classes)

    def forward(self, numeric, categorical, sequence):
        numbers, cat, seq, mask = self.features(numeric, categorical, sequence)
        fields = torch.cat([numbers.unsqueeze(-1) * self.numeric_fields, cat, FeatureInput.pool(seq, mask)], dim=1)
        return (self.first_order(numbers, categorical, sequence) + self.fm_head(self.fm(fields))
                + self.head(self.body(fields.flatten(1))))


class DeepFM(MLP):
    """DeepFM (Guo et al. 2017): first-order terms, FM pairwise interactions and an MLP on shared field embeddings."""

    name = "deepfm"
    description = "DeepFM: factorisation-machine interactions plus an MLP on shared embeddings."

    def _build(self, spec):
        return _DeepFMNet(spec, self.embedding_dim, self.hidden_dim, self.n_layers, self.dropout)


# --- DCN-v2 ---------------------------------------------------------------------------------------

class _DCNv2Net(nn.Module):
    def __init__(self, spec: InputSpec, embedding_dim, n_cross_layers, hidden_dim, n_layers, dropout):
        super().__init__()
        self.features = FeatureInput(spec, embedding_dim)
        self.cross = CrossNetV2(self.features.flat_dim, n_cross_layers)
        self.body, width = mlp(self.features.flat_dim, hidden_dim, n_layers, dropout)
        self.head = nn.Linear(width, spec.n_classes)

    def forward(self, numeric, categorical, sequence):
        return self.head(self.body(self.cross(self.features.flat(numeric, categorical, sequence))))


class DCNv2(Model):
    """DCN-v2 (Wang et al. 2021): explicit full-rank cross layers, then an MLP (stacked)."""

    name = "dcn_v2"
    description = "Deep & Cross Network v2: cross layers for explicit feature interactions, then an MLP."
    params = {"embedding_dim": EMBEDDING_DIM,
              "n_cross_layers": Int(1, 8, help="Cross layers (each adds one order of interaction)."),
              "hidden_dim": HIDDEN_DIM, "n_layers": N_LAYERS, "dropout": DROPOUT}

    def __init__(self, embedding_dim=16, n_cross_layers=2, hidden_dim=128, n_layers=2, dropout=0.1):
        self.embedding_dim = embedding_dim
        self.n_cross_layers = n_cross_layers
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.dropout = dropout

    def _build(self, spec):
        return _DCNv2Net(spec, self.embedding_dim, self.n_cross_layers, self.hidden_dim, self.n_layers,
                         self.dropout)


# --- DIN ------------------------------------------------------------------------------------------

class _DINNet(nn.Module):
    def __init__(self, spec: InputSpec, embedding_dim, attention_dim, hidden_dim, n_layers, dropout):
        super().__init__()
        self.features = FeatureInput(spec, embedding_dim)
        key_dim = spec.n_groups * embedding_dim
        target_dim = spec.n_numeric + spec.n_categorical * embedding_dim
        # The target (query) of each group: the sample's own item / category embedded with the same table
        # as the history (DIN's shared embedding), plus a projection of all its other features, so
        # groups without such a column (e.g. past behaviour types) are scored against the context.
        self.targets = list(spec.sequence_targets) or [-1] * spec.n_groups
        self.context = nn.Linear(target_dim, key_dim) if target_dim else None
        self.attention = TargetAttention(key_dim, attention_dim)
        self.body, width = mlp(target_dim + 2 * key_dim, hidden_dim, n_layers, dropout)
        self.head = nn.Linear(width, spec.n_classes)

    def forward(self, numeric, categorical, sequence, return_attention: bool = False):
        numbers, cat, seq, mask = self.features(numeric, categorical, sequence)
        keys = seq.permute(0, 2, 1, 3).flatten(2)                      # (B, L, G*D)
        target_in = torch.cat([numbers, cat.flatten(1)], dim=1)
        own = [self.features.sequence[g](categorical[:, c]) if c >= 0 else keys.new_zeros(keys.shape[0], seq.shape[-1])
               for g, c in enumerate(self.targets)]
        query = torch.cat(own, dim=1)
        if self.context is not None:
            query = query + self.context(target_in)
        interest, weights = self.attention(query, keys, mask)
        logits = self.head(self.body(torch.cat([target_in, query, interest], dim=1)))
        return (logits, weights) if return_attention else logits


class DIN(Model):
    """Deep Interest Network-style model (Zhou et al. 2018): target attention over the behaviour sequence.

    Each past behaviour is scored against the target: the sample's own item / category, embedded with
    the same tables as the history when the schema has matching columns (``item`` <-> ``hist_item``),
    plus a projection of its other features. The module's ``forward(..., return_attention=True)`` also
    returns the attention weight of every sequence position ``(B, L)`` (zero on padding), for
    sample-importance views.
    """

    name = "din"
    description = "DIN-style target attention over the user's recent behaviour sequence."
    requires_sequence = True
    params = {"embedding_dim": EMBEDDING_DIM,
              "attention_dim": Int(1, 1024, help="Hidden units of the attention scoring MLP."),
              "hidden_dim": HIDDEN_DIM, "n_layers": N_LAYERS, "dropout": DROPOUT}

    def __init__(self, embedding_dim=16, attention_dim=64, hidden_dim=128, n_layers=2, dropout=0.1):
        self.embedding_dim = embedding_dim
        self.attention_dim = attention_dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.dropout = dropout

    def _build(self, spec):
        return _DINNet(spec, self.embedding_dim, self.attention_dim, self.hidden_dim, self.n_layers, self.dropout)
