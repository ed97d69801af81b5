"""Fine-tune all-MiniLM-L6-v2, rebuilt on our from-scratch BERT, on STS-B with CosineSimilarityLoss.

Prints the before/after demonstration (pair similarities, contextual token vectors) and the results table
(base vs fine-tuned with mean pooling vs MLP-then-mean, with size and CPU speed), and saves both models
(self-contained, with model cards) plus their built-in exports. Same job as `st-bertapprox finetune`.

    python examples/train_stsb.py --output runs/stsb            # the README table (about 40 min on 2 CPU cores)
    python examples/train_stsb.py --output runs/stsb-quick --epochs 1 --max-train-pairs 500
"""

from __future__ import annotations

import sys

from st_bertapprox.cli.main import main

if __name__ == "__main__":
    main(["finetune", *sys.argv[1:]])
