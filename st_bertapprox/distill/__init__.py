"""Distillation: the teacher cache, vocabulary mining, entry targets, the one trainer, losses, the student recipe
(``run_distill``) and the tiny transformer (``run_tiny``)."""
