"""SentenceTransformerTrainer runs through our modules: CosineSimilarityLoss on real STS-B pairs lowers the loss."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

from st_bertapprox import MLPMeanPooling

pytestmark = pytest.mark.slow  # every test here runs real weights end to end


def pair_loss(model: SentenceTransformer, data) -> float:
    a = model.encode(list(data["sentence1"]), convert_to_tensor=True)
    b = model.encode(list(data["sentence2"]), convert_to_tensor=True)
    cos = torch.nn.functional.cosine_similarity(a, b)
    return torch.nn.functional.mse_loss(cos, torch.tensor(data["score"])).item()


def test_trainer_with_bert_transformer_and_mlp_pooling_lowers_the_loss(scratch_minilm, stsb_train, tmp_path):
    torch.manual_seed(0)
    model = SentenceTransformer(modules=[scratch_minilm[0], MLPMeanPooling(384, hidden_dims=[384])], device="cpu")
    data = stsb_train.shuffle(seed=0).select(range(96))
    before = pair_loss(model, data)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        learning_rate=5e-5,
        save_strategy="no",
        report_to="none",
        logging_steps=2,
        seed=0,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=CosineSimilarityLoss(model))
    trainer.train()
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    after = pair_loss(model, data)
    assert len(logged) >= 4
    assert after < 0.8 * before, (before, after, logged)
