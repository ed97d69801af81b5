"""Distillation losses, next to sentence-transformers' ``MSELoss``: :class:`EntryDistillLoss` (sentence MSE plus
entry-level targets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MSELoss

from st_bertapprox.distill.entry_targets import EntryTargets


class EntryDistillLoss(MSELoss):
    """MSE to the teacher's sentence embedding plus ``weight`` times the entry-level loss.

    The entry-level loss (see :mod:`st_bertapprox.distill.entry_targets`) is the same MSE between every entry's vector
    and its target, both scaled to unit length first (entry vectors and the teacher's token vectors live at different
    scales), averaged over the batch's entries. For unit vectors the MSE is ``2 (1 - cos) / C``, so ``weight=1``
    counts an entry's cosine gap like its sentence's. Entries covering no teacher word piece are left out.

    The label of a text is ``[teacher sentence embedding | text index]``: the index finds its entry targets, which
    are too many and too ragged for a dataset column.
    """

    def __init__(self, model: SentenceTransformer, targets: EntryTargets, weight: float) -> None:
        super().__init__(model)
        self.targets, self.weight = targets, weight

    def forward(self, sentence_features: list[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        """The sentence MSE plus the weighted entry loss; raises ``ValueError`` if a text's targets don't fit."""
        features = self.model(sentence_features[0])
        C = labels.size(1) - 1
        loss = self.compute_loss_from_embeddings([features["sentence_embedding"]], [labels[:, :C]])
        v, mask = features["entry_embeddings"], features["attention_mask"].bool()  # (B, T, C), (B, T)
        target = torch.zeros_like(v)
        for row, index in enumerate(labels[:, C].long().tolist()):
            rows = torch.from_numpy(self.targets.of(index))
            if len(rows) != int(mask[row].sum()):
                raise ValueError(
                    f"Text {index} has {int(mask[row].sum())} entries but {len(rows)} entry targets: the targets were "
                    "computed with another vocabulary or max_seq_length."
                )
            target[row, : len(rows)] = rows.to(v.device)
        valid = mask & (target.norm(dim=-1) > 0)
        gap = (F.normalize(v, dim=-1) - F.normalize(target, dim=-1)).pow(2).mean(-1)  # (B, T): 2 (1 - cos) / C
        entry_loss = (gap * valid).sum() / valid.sum().clamp(min=1)
        return loss + self.weight * entry_loss
