"""sentence-transformers modules of st-bertapprox.

Self-contained saves: ``SentenceTransformer.save`` records each module in ``modules.json`` as
``type(module).__module__ + "." + class name``, and ``SentenceTransformer(path, trust_remote_code=True)`` resolves a
one-dot reference ``file.Class`` from ``file.py`` in the model's root folder (transformers' dynamic modules), also
where st-bertapprox is not installed. So every file defining a module class gets a top-level import name
(``st_bertapprox_student`` for ``modules/student.py``, ...; a two-line file of that name ships with the package, so
the name imports in a fresh process too), its classes report that name as their module, and their ``save`` copies
the file into the root under it (``files.save_code``): a plain ``model.save()``, ``model.push_to_hub()`` or the
trainer's ``push_to_hub=True`` writes a repository that carries its code, without any change to sentence-transformers.
"""

from __future__ import annotations

import sys

from . import bert, pooling, student
from .bert import Bert, BertConfig, BertTransformer
from .pooling import MLPMeanPooling
from .student import DeepSetsPooling, VocabSetEncoder, fold_student
from .vocab import NGramVocab

for _module, _classes in (
    (bert, [BertTransformer]),
    (pooling, [MLPMeanPooling]),
    (student, [VocabSetEncoder, DeepSetsPooling]),
):
    _name = "st_bertapprox_" + _module.__name__.rsplit(".", 1)[-1]
    sys.modules[_name] = _module  # the top-level name *is* this module: pickling and getsource resolve through it
    for _cls in _classes:
        _cls.__module__ = _name

__all__ = [
    "Bert",
    "BertConfig",
    "BertTransformer",
    "DeepSetsPooling",
    "MLPMeanPooling",
    "NGramVocab",
    "VocabSetEncoder",
    "fold_student",
]
