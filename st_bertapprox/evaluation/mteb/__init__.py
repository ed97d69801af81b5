"""MTEB: the local task suite over the shared data (``tasks``), running it (``run``), results for model cards
(``cards``). The one gate of the ``eval`` extra: every module below imports mteb at module level."""

try:
    import mteb  # noqa: F401
except ImportError as e:  # pragma: no cover - the dev install has it
    raise ImportError("MTEB evaluation needs mteb: pip install 'st-bertapprox[eval]'") from e
