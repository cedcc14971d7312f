"""Self-Attentive Knowledge Tracing (Pandey & Karypis, 2019).

The query of row t is the embedding of its item's skills; keys and values are
the embeddings of the earlier answers (skill, correct) plus a position
embedding, preceded by a learnt "start" interaction so the first row has
something to attend to. A causal mask lets row t see only the start token and
rows < t of its window. One multi-head attention layer, a position-wise
feed-forward block (both with residual connections and layer norm) and a
linear layer give the logit. Windowing, training and the artifact are in
``deep``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tracing.estimators import hyper
from tracing.estimators.deep import Batch, DeepEstimator, TracingNetwork


class SAKTNetwork(TracingNetwork):
    def __init__(self, q_matrix: np.ndarray, *, size: int, heads: int, window: int, dropout: float) -> None:
        super().__init__(q_matrix)
        self.interactions = nn.Embedding(2 * self.n_skills, size)
        self.exercises = nn.Embedding(self.n_skills, size)
        self.positions = nn.Embedding(window, size)
        self.start = nn.Parameter(torch.zeros(1, 1, size))
        self.attention = nn.MultiheadAttention(size, heads, dropout=dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(size)
        self.feed_forward = nn.Sequential(nn.Linear(size, size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(size, size))
        self.feed_forward_norm = nn.LayerNorm(size)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(size, 1)

    def _keys(self, item: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        """(B, T) answers -> (B, T + 1, D): start token then each answer, with positions 0..T."""
        answers = self.interaction_embedding(self.interactions, item, correct)
        keys = torch.cat([self.start.expand(item.shape[0], 1, -1), answers], dim=1)
        positions: torch.Tensor = self.positions(torch.arange(keys.shape[1], device=keys.device))
        return keys + positions

    def _read(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attended, _ = self.attention(queries, keys, keys, attn_mask=mask, need_weights=False)
        hidden = self.attention_norm(queries + self.dropout(attended))
        hidden = self.feed_forward_norm(hidden + self.dropout(self.feed_forward(hidden)))
        logits: torch.Tensor = self.output(self.dropout(hidden))
        return logits.squeeze(-1)

    def forward(self, batch: Batch) -> torch.Tensor:
        """(B, T) logits: row t attends to the start token and rows < t."""
        item = batch["item"]
        length = item.shape[1]
        keys = self._keys(item[:, :-1], batch["correct"][:, :-1])  # (B, T, D): start, rows 0..T-2
        queries = self.skill_embedding(self.exercises, item)  # (B, T, D)
        # Key j is row j - 1; row t may see keys 0..t. Padding sits after the real rows, so never seen.
        causal = torch.ones(length, length, dtype=torch.bool, device=item.device).triu(1)
        return self._read(queries, keys, causal)

    def predict_last(self, batch: Batch, queries: torch.Tensor) -> torch.Tensor:
        """(M,) logits of a next row after the (1, T) history, for each query item."""
        length = int(batch["mask"].sum())
        keys = self._keys(batch["item"][:, :length], batch["correct"][:, :length])  # (1, T + 1, D)
        query = self.skill_embedding(self.exercises, queries).unsqueeze(1)  # (M, 1, D)
        return self._read(query, keys.expand(len(queries), -1, -1), None)[:, 0]


class SAKT(DeepEstimator):
    """Self-attentive KT. Keywords: ``size`` (embedding and attention width), ``heads`` and the common ones."""

    kind = "sakt"
    PARAMS = hyper.SAKT

    def build_network(self, q_matrix: np.ndarray) -> SAKTNetwork:
        config = self.config
        return SAKTNetwork(
            q_matrix, size=config["size"], heads=config["heads"], window=config["window"], dropout=config["dropout"]
        )
