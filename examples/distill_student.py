"""Distil all-MiniLM-L6-v2 into the fast student, step by step with the Python API.

`st-bertapprox distill --output runs/student` runs the same steps (and writes model cards); this script shows them.

    python examples/distill_student.py --output runs/example --num-sentences 40000
"""

from __future__ import annotations

import argparse

from sentence_transformers import SentenceTransformer

from st_bertapprox.config import DistillConfig
from st_bertapprox.data.corpus import load_corpus
from st_bertapprox.data.shared import teacher_path
from st_bertapprox.distill.mining import build_vocab
from st_bertapprox.distill.student import distill
from st_bertapprox.modules.student import fold_student
from st_bertapprox.persistence.saving import save_pretrained

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output", default="runs/example")
parser.add_argument("--num-sentences", type=int, default=40_000)
parser.add_argument("--epochs", type=int, default=DistillConfig().epochs)
args = parser.parse_args()

teacher = SentenceTransformer(teacher_path())
# mining texts (all but the held-out lines), training texts (STS-B train + N Wikipedia lines), held-out texts
mine_texts, train_texts, heldout = load_corpus(num_sentences=args.num_sentences)

# offline: n-gram / skip-gram vocabulary + the teacher's embedding of every entry (cached, resumable)
encoder = build_vocab(mine_texts, teacher, output_dir=f"{args.output}/vocab")

# MSE distillation through SentenceTransformerTrainer; best checkpoint by held-out cosine to the teacher
student, metrics = distill(teacher, encoder, train_texts, heldout, args.output, DistillConfig(epochs=args.epochs))
print({k: round(v, 4) for k, v in metrics.items()})

# fold phi and the attention logits into the table: online cost = lookup + weighted sum + rho
folded = fold_student(student)
save_pretrained(folded, f"{args.output}/student-folded")  # loads with trust_remote_code=True, no st-bertapprox needed
emb = folded.encode(["How are you?", "How are things?"])
print("cosine('How are you?', 'How are things?') =", float(folded.similarity(emb[:1], emb[1:])))
