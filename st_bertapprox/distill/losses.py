"""Distillation losses, next to sentence-transformers' ``MSELoss`` (each one is that MSE plus a term of its own):

* :class:`EntryDistillLoss`: plus entry-level targets (the teacher's token vectors under each entry);
* :class:`ListwiseDistillLoss`: plus KL between the teacher's and the student's softmax over a collection's
  documents (embedded by the teacher): the student learns to put the teacher's documents first (asymmetric search);
* :class:`RelationalDistillLoss`: plus KL between the teacher's and the student's query x document similarity
  rows within a batch of (query-like text, document) pairs, both sides by the student (symmetric search).

The KL terms are pure functions (:func:`listwise_kl`, :func:`relational_kl`) so their values can be checked by hand.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.losses.merged_forward import embed_columns
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


def _kl_rows(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(softmax(teacher) || softmax(student))."""
    return F.kl_div(
        F.log_softmax(student_logits, dim=-1), F.log_softmax(teacher_logits, dim=-1), log_target=True,
        reduction="batchmean",
    )  # fmt: skip


def listwise_kl(
    student: torch.Tensor, teacher: torch.Tensor, documents: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(softmax(t D^T / tau) || softmax(s D^T / tau)), averaged over queries.

    Args:
        student: (B, C) the student's query embeddings.
        teacher: (B, C) the teacher's embeddings of the same queries.
        documents: (N, C) the teacher's document embeddings shared by every query, or (B, K, C) a candidate list
            per query (see :func:`candidate_documents`).
        temperature: tau; the teacher's distribution sharpens as it falls.

    Returns:
        A scalar, zero exactly when the student ranks (and scores, up to a constant) the documents as the teacher.
    """
    if documents.dim() == 2:
        return _kl_rows(teacher @ documents.T / temperature, student @ documents.T / temperature)
    t = torch.einsum("bc,bkc->bk", teacher, documents) / temperature
    return _kl_rows(t, torch.einsum("bc,bkc->bk", student, documents) / temperature)


def candidate_documents(
    teacher: torch.Tensor, documents: torch.Tensor, top_k: int, negatives: int, generator: torch.Generator
) -> torch.Tensor:
    """(B, top_k + negatives) document indices per query: the teacher's top ``top_k``, then ``negatives`` drawn
    uniformly from the rest of the collection (a draw may repeat a top document: rare for a large collection)."""
    top = (teacher @ documents.T).topk(top_k, dim=-1).indices
    drawn = torch.randint(len(documents), (len(teacher), negatives), generator=generator).to(top.device)
    return torch.cat([top, drawn], dim=-1)


def relational_kl(
    student_queries: torch.Tensor,
    student_documents: torch.Tensor,
    teacher_queries: torch.Tensor,
    teacher_documents: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Row-wise KL between the teacher's and the student's (B, B) query x document similarity matrices of a batch:
    every query's distribution over the batch's documents (its own and the others, in-batch negatives).

    Args:
        student_queries: (B, C) the student's embeddings of the queries.
        student_documents: (B, C) the student's embeddings of their documents.
        teacher_queries: (B, C) the teacher's embeddings of the queries.
        teacher_documents: (B, C) the teacher's embeddings of the documents.
        temperature: tau of both softmaxes.

    Returns:
        A scalar, zero when the student's similarity rows equal the teacher's up to a constant per row.
    """
    return _kl_rows(
        teacher_queries @ teacher_documents.T / temperature, student_queries @ student_documents.T / temperature
    )


class ListwiseDistillLoss(MSELoss):
    """MSE to the teacher's sentence embedding plus ``weight`` times :func:`listwise_kl` over ``documents``.

    For a query-like text q with teacher embedding t(q) (the ``label`` column, as for ``MSELoss``): KL(softmax(t(q)
    D^T / tau) || softmax(s(q) D^T / tau)), D the teacher's embeddings of the collection's documents. With
    ``top_k`` set, each query's softmax runs over the teacher's top ``top_k`` documents plus ``negatives`` drawn at
    random (for collections too large for a full (B, N) product per step); else over all of them.

    Args:
        model: The student.
        documents: (N, C) the teacher's document embeddings (unit length, like the teacher's queries).
        weight: Weight of the KL term next to the MSE.
        temperature: tau.
        top_k: Candidates per query from the teacher's ranking (None: every document).
        negatives: Random documents added to the ``top_k`` candidates.
        seed: Seed of the negatives' draws.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        documents: torch.Tensor,
        weight: float = 1.0,
        temperature: float = 0.05,
        top_k: int | None = None,
        negatives: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(model)
        if documents.dim() != 2 or len(documents) == 0:
            raise ValueError(f"documents must be a non-empty (N, C) tensor, got shape {tuple(documents.shape)}.")
        if temperature <= 0 or weight < 0:
            raise ValueError(f"temperature must be > 0 and weight >= 0, got {temperature} and {weight}.")
        if top_k is not None and not 1 <= top_k <= len(documents):
            raise ValueError(f"top_k must be in [1, {len(documents)}] (the documents), got {top_k}.")
        self.documents, self.weight, self.temperature = documents.detach(), weight, temperature
        self.top_k, self.negatives = top_k, negatives
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, sentence_features: list[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        """The MSE plus the weighted listwise KL of the batch's queries."""
        (student,) = embed_columns(self.model, sentence_features)
        teacher = labels.detach().to(student)
        loss = self.compute_loss_from_embeddings([student], [teacher])
        if self.documents.device != student.device or self.documents.dtype != student.dtype:
            self.documents = self.documents.to(student)  # once, not every step
        documents = self.documents
        if self.top_k is not None:
            documents = documents[candidate_documents(teacher, documents, self.top_k, self.negatives, self.generator)]
        return loss + self.weight * listwise_kl(student, teacher, documents, self.temperature)


class RelationalDistillLoss(MSELoss):
    """MSE of both columns to their teacher embeddings plus ``weight`` times :func:`relational_kl` of the batch.

    Inputs: (query-like text, its document) pairs; labels (B, 2, C): the teacher's embeddings of both. Both sides are
    embedded by the student, so this trains the symmetric setting (documents indexed by the student too); the
    batch's other documents are the negatives.

    Args:
        model: The student.
        weight: Weight of the KL term next to the MSE.
        temperature: tau.
    """

    def __init__(self, model: SentenceTransformer, weight: float = 1.0, temperature: float = 0.05) -> None:
        super().__init__(model)
        if temperature <= 0 or weight < 0:
            raise ValueError(f"temperature must be > 0 and weight >= 0, got {temperature} and {weight}.")
        self.weight, self.temperature = weight, temperature

    def forward(self, sentence_features: list[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        """The two columns' MSE plus the weighted relational KL."""
        if labels.dim() != 3 or labels.size(1) != 2 or len(sentence_features) != 2:
            raise ValueError(
                "RelationalDistillLoss takes (query, document) columns and labels of shape (batch, 2, dim): the "
                f"teacher's embeddings of both; got {len(sentence_features)} columns, labels {tuple(labels.shape)}."
            )
        queries, docs = embed_columns(self.model, sentence_features)
        teacher = labels.detach().to(queries)
        loss = self.compute_loss_from_embeddings([queries, docs], [teacher[:, 0], teacher[:, 1]])
        return loss + self.weight * relational_kl(queries, docs, teacher[:, 0], teacher[:, 1], self.temperature)
