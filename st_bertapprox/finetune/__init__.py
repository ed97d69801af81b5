"""Fine-tuning recipes: STS-B (``stsb``), contrastive on labelled texts (``contrastive``), and what they share
(``common``)."""
