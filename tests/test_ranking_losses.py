"""Ranking distillation losses (``distill.losses``, issue #24 item 1): the KL terms on hand-made cases with known
values (a student equal to its teacher costs nothing; a swapped ranking costs more than a scaled one), the candidate
lists, and both losses inside ``SentenceTransformerTrainer`` on a tiny student."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.losses import MSELoss
from sentence_transformers.sentence_transformer.modules import Normalize

from st_bertapprox.config import DistillConfig
from st_bertapprox.distill.losses import (
    ListwiseDistillLoss,
    RelationalDistillLoss,
    candidate_documents,
    listwise_kl,
    relational_kl,
)
from st_bertapprox.finetune.common import training_arguments
from st_bertapprox.modules.student import DeepSetsPooling, VocabSetEncoder
from st_bertapprox.modules.vocab import NGramVocab

DOCS = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.0, 0.0, 1.0]]), dim=-1)
TEACHER = F.normalize(torch.tensor([[0.9, 0.4, 0.1], [0.1, 0.3, 0.95]]), dim=-1)


def _kl(p_logits: list[float], q_logits: list[float]) -> float:
    """KL(softmax(p) || softmax(q)) written out with math, independent of torch."""
    zp, zq = sum(math.exp(x) for x in p_logits), sum(math.exp(x) for x in q_logits)
    return sum(math.exp(a) / zp * ((a - math.log(zp)) - (b - math.log(zq))) for a, b in zip(p_logits, q_logits))


def test_listwise_kl_equals_the_hand_computed_value():
    student = F.normalize(torch.tensor([[0.7, 0.7, 0.1], [0.2, 0.1, 0.97]]), dim=-1)
    tau = 0.1
    expected = sum(
        _kl((TEACHER[i] @ DOCS.T / tau).tolist(), (student[i] @ DOCS.T / tau).tolist()) for i in range(2)
    ) / 2  # fmt: skip
    assert listwise_kl(student, TEACHER, DOCS, tau).item() == pytest.approx(expected, rel=1e-5)
    assert listwise_kl(TEACHER, TEACHER, DOCS, tau).item() == pytest.approx(0.0, abs=1e-7)


def test_a_swapped_ranking_costs_more_than_a_scaled_one():
    """Scaling the student's query keeps the teacher's order (only the softmax's sharpness moves); swapping two
    coordinates reorders the documents: the second must cost more, and both more than nothing."""
    scaled = 0.8 * TEACHER
    swapped = TEACHER[:, [1, 0, 2]]
    tau = 0.05
    same, mild, wrong = (listwise_kl(s, TEACHER, DOCS, tau).item() for s in (TEACHER, scaled, swapped))
    assert same == pytest.approx(0.0, abs=1e-7) and 0 < mild < wrong
    # the relational form: the same contrast on a batch of (query, document) pairs
    queries, docs = TEACHER, DOCS[[0, 3]]
    assert relational_kl(queries, docs, queries, docs, tau).item() == pytest.approx(0.0, abs=1e-7)
    mild = relational_kl(0.8 * queries, docs, queries, docs, tau).item()
    wrong = relational_kl(queries, docs[[1, 0]], queries, docs, tau).item()
    assert 0 < mild < wrong


def test_candidates_hold_the_teachers_top_documents_then_random_ones():
    documents = F.normalize(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    idx = candidate_documents(TEACHER, documents, top_k=5, negatives=7, generator=torch.Generator().manual_seed(1))
    assert idx.shape == (2, 12)
    assert torch.equal(idx[:, :5], (TEACHER @ documents.T).topk(5).indices)
    # with every document as a candidate, the candidate form equals the full softmax (up to order)
    full = candidate_documents(TEACHER, documents, top_k=50, negatives=0, generator=torch.Generator())
    student = F.normalize(TEACHER + 0.3, dim=-1)
    assert listwise_kl(student, TEACHER, documents[full], 0.05).item() == pytest.approx(
        listwise_kl(student, TEACHER, documents, 0.05).item(), rel=1e-5
    )


def tiny_student() -> SentenceTransformer:
    words = ["cells", "protein", "gene", "mice", "cancer", "immune", "brain", "blood", "virus", "drug"]
    torch.manual_seed(0)
    vocab = NGramVocab(words, [], [])
    encoder = VocabSetEncoder(vocab, torch.randn(len(vocab), 8))
    pooling = DeepSetsPooling(8, phi_hidden_dim=16, num_heads=2, rho_hidden_dim=16, output_dim=3)
    return SentenceTransformer(modules=[encoder, pooling, Normalize()], device="cpu")


TEXTS = ["cells protein", "gene mice", "cancer immune", "brain blood", "virus drug", "protein gene", "mice brain"]


def test_losses_add_their_term_to_mse_and_validate_inputs():
    student = tiny_student().eval()  # no dropout: the same forward pass every time
    features = [student.tokenize(TEXTS[:2])]
    teacher = TEACHER
    mse = MSELoss(student)(features, teacher)
    assert ListwiseDistillLoss(student, DOCS, weight=0.0)(features, teacher).item() == pytest.approx(mse.item())
    with torch.no_grad():
        emb = student(student.tokenize(TEXTS[:2]))["sentence_embedding"]
    full = ListwiseDistillLoss(student, DOCS, weight=2.0, temperature=0.1)(features, teacher)
    assert full.item() == pytest.approx(mse.item() + 2.0 * listwise_kl(emb, teacher, DOCS, 0.1).item(), rel=1e-5)
    pair_features = [student.tokenize(TEXTS[:2]), student.tokenize(TEXTS[2:4])]
    labels = torch.stack([TEACHER, DOCS[[0, 3]]], dim=1)
    assert torch.isfinite(RelationalDistillLoss(student)(pair_features, labels))
    with pytest.raises(ValueError, match="top_k"):
        ListwiseDistillLoss(student, DOCS, top_k=10)
    with pytest.raises(ValueError, match="temperature"):
        RelationalDistillLoss(student, temperature=0)
    with pytest.raises(ValueError, match=r"\(batch, 2, dim\)"):
        RelationalDistillLoss(student)(pair_features, TEACHER)


@pytest.mark.parametrize("loss_name", ["listwise", "relational"])
def test_trainer_lowers_the_ranking_loss_on_a_tiny_student(tmp_path, loss_name):
    """Both losses run in SentenceTransformerTrainer (label column = teacher embeddings) and lower their value."""
    student = tiny_student()
    gen = torch.Generator().manual_seed(3)
    targets = F.normalize(torch.randn(len(TEXTS), 3, generator=gen), dim=-1)
    if loss_name == "listwise":
        loss = ListwiseDistillLoss(student, DOCS, top_k=2, negatives=1)
        data = Dataset.from_dict({"text": TEXTS, "label": targets.tolist()})
        columns = [student.tokenize(TEXTS)]
        labels = targets
    else:
        loss = RelationalDistillLoss(student)
        docs = TEXTS[1:] + TEXTS[:1]
        labels = torch.stack([targets, targets.roll(-1, dims=0)], dim=1)
        data = Dataset.from_dict({"query": TEXTS, "document": docs, "label": labels.tolist()})
        columns = [student.tokenize(TEXTS), student.tokenize(docs)]
    loss_eval = type(loss)(student, DOCS) if loss_name == "listwise" else type(loss)(student)
    with torch.no_grad():
        before = loss_eval(columns, labels).item()
    recipe = DistillConfig(epochs=30, batch_size=7, learning_rate=1e-2, eval_stsb=False)
    args = training_arguments(recipe, str(tmp_path), eval_strategy="no", save_strategy="no", logging_steps=1000)
    SentenceTransformerTrainer(model=student, args=args, train_dataset=data, loss=loss).train()
    with torch.no_grad():
        after = loss_eval(columns, labels).item()
    assert after < 0.8 * before, (before, after)
