"""Deep Knowledge Tracing (Piech et al., 2015): an LSTM over (skill, answer) inputs.

The network embeds each answer as its (skill, correct) pair (averaged over the
item's skills, see ``deep``), runs an LSTM over the answers and reads from the
state before row t a logit per skill; row t's logit is the mean of those of
its item's skills. Windowing, training and the artifact are in ``deep``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tracing.estimators import hyper
from tracing.estimators.deep import Batch, DeepEstimator, TracingNetwork, shifted


class DKTNetwork(TracingNetwork):
    def __init__(self, q_matrix: np.ndarray, *, embedding: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__(q_matrix)
        self.embedding = nn.Embedding(2 * self.n_skills, embedding)
        self.lstm = nn.LSTM(
            embedding, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, self.n_skills)

    def forward(self, batch: Batch) -> torch.Tensor:
        """(B, T) logits: row t's answer from the state after rows < t."""
        inputs = self.interaction_embedding(self.embedding, batch["item"], batch["correct"])  # (B, T, E)
        states, _ = self.lstm(inputs)  # (B, T, H): after each row
        skill_logits = self.output(self.dropout(shifted(states)))  # (B, T, n_skills)
        return self.read_skills(skill_logits, batch["item"])

    def predict_last(self, batch: Batch, queries: torch.Tensor) -> torch.Tensor:
        """(M,) logits of a next row after the (1, T) history, for each query item."""
        length = int(batch["mask"].sum())
        if length == 0:
            state = torch.zeros(1, self.lstm.hidden_size)
        else:
            inputs = self.interaction_embedding(self.embedding, batch["item"][:, :length], batch["correct"][:, :length])
            state = self.lstm(inputs)[0][:, -1]
        skill_logits = self.output(self.dropout(state))  # (1, n_skills)
        return self.read_skills(skill_logits.expand(len(queries), -1), queries)


class DKT(DeepEstimator):
    """Deep Knowledge Tracing. Keywords: ``embedding``, ``hidden``, ``layers`` and the common ones (``deep``)."""

    kind = "dkt"
    PARAMS = hyper.DKT

    def build_network(self, q_matrix: np.ndarray) -> DKTNetwork:
        config = self.config
        return DKTNetwork(
            q_matrix,
            embedding=config["embedding"],
            hidden=config["hidden"],
            layers=config["layers"],
            dropout=config["dropout"],
        )
