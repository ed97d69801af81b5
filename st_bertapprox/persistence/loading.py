"""Load a saved model without running code from its folder unless asked to.

``SentenceTransformer(path, trust_remote_code=True)`` imports whatever Python the folder's ``modules.json`` names, so
our command line never passes it on its own. :func:`load_model` resolves the module types st-bertapprox itself
writes (``st_bertapprox_student.VocabSetEncoder``, ...; also the names older versions wrote) to the installed classes,
loads built-in sentence-transformers modules as usual, and refuses anything else unless ``trust_remote_code=True``.
"""

from __future__ import annotations

from typing import Any

from sentence_transformers import SentenceTransformer

from st_bertapprox.modules import BertTransformer, DeepSetsPooling, MLPMeanPooling, VocabSetEncoder
from st_bertapprox.modules.checks import check_model_folder

# file stems our classes have been saved under: today's top-level names, older save_with_code copies, the package
_STEMS = {
    BertTransformer: ("st_bertapprox_bert", "bert", "st_bertapprox.modules.bert"),
    MLPMeanPooling: ("st_bertapprox_pooling", "pooling", "st_bertapprox.modules.pooling"),
    VocabSetEncoder: ("st_bertapprox_student", "student", "st_bertapprox.modules.student"),
    DeepSetsPooling: ("st_bertapprox_student", "student", "st_bertapprox.modules.student"),
}


OUR_CLASSES = {f"{stem}.{cls.__name__}": cls for cls, stems in _STEMS.items() for stem in stems}


def load_model(model_name_or_path: str, trust_remote_code: bool = False, **kwargs: Any) -> SentenceTransformer:
    """A SentenceTransformer from a folder or Hub id, running code from it only with ``trust_remote_code=True``.

    Our own module types load with the installed st-bertapprox classes, built-in ones as usual.

    Raises:
        ValueError: the model names a module class that is neither built-in nor ours and ``trust_remote_code`` is
            False; or the folder is incomplete or corrupt (``files.check_model_folder``).
        FileNotFoundError: no ``modules.json``: not a saved SentenceTransformer.
    """
    if trust_remote_code:
        return SentenceTransformer(model_name_or_path, trust_remote_code=True, **kwargs)
    hub_kwargs = {k: kwargs[k] for k in ("token", "cache_folder", "revision", "local_files_only") if k in kwargs}
    types = [m["type"] for m in check_model_folder(model_name_or_path, **hub_kwargs)]
    foreign = [t for t in types if not t.startswith("sentence_transformers.") and t not in OUR_CLASSES]
    if foreign:
        raise ValueError(
            f"{model_name_or_path!r} names module classes that are neither sentence-transformers' nor "
            f"st-bertapprox's: {foreign}. Loading it would run Python code from the model; pass "
            "--trust-remote-code (trust_remote_code=True) only if you trust its author."
        )
    ours = {t: OUR_CLASSES[t] for t in types if t in OUR_CLASSES}
    if not ours:
        return SentenceTransformer(model_name_or_path, **kwargs)
    loader = getattr(SentenceTransformer, "_load_with_module_classes", None)  # sentence-transformers >= 6.3
    if loader is None:
        raise ValueError(
            f"{model_name_or_path!r} uses st-bertapprox modules, and this sentence-transformers version cannot "
            "load them from the installed package: upgrade to sentence-transformers>=6.3, or pass "
            "--trust-remote-code to load the module code saved with the model."
        )
    return loader(model_name_or_path, ours, **kwargs)
