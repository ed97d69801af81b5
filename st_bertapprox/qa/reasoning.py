"""Weak reasoning-type labels derived from the wording of a question, for QA data that has none (SQuAD, XQuAD).

These labels are **weak**: they come from a handful of keyword rules on the question alone, never from an annotator
or from the passage, so they say what a question *looks like* ("why ..." -> causal), not what reasoning answering it
really takes. A head trained on them learns to reproduce the rules; its accuracy on them measures that and nothing
more.

The rules, tried in this order (the first that matches wins; lower-cased question, whole words):

1. ``causal``: ``why``, or a cause/effect word: cause(s/d), causing, reason(s), because, due to, lead(s)/led to,
   result(s/ed) in, result of, consequence(s), effect(s) of, purpose.
2. ``comparative``: ``than``, compare(d)/comparison, versus/vs, difference(s)/differ, more, less, fewer, most,
   least, better/best, worse/worst, or one of the comparative/superlative adjectives in ``_COMPARATIVES``.
3. ``quantitative``: ``how`` + many/much/long/far/old/big/large/often/high/tall/fast/deep/wide/heavy, or
   ``what``/``which`` + percentage/percent/number/amount/proportion/fraction/size/population.
4. ``temporal``: the question starts with ``when``; or ``what``/``which`` + year/date/century/decade/month/day/era/
   period/season; or ``in what year``.
5. ``manner``: any other ``how`` question ("How did Tesla die?"), ``in what way``, ``by what means``.
6. ``factual``: everything else (who / what / which / where / name ... a fact stated in the passage).

On XQuAD-en (1,190 questions) this gives factual 67 %, quantitative 10 %, temporal 9 %, comparative 7 %, causal 4 %,
manner 2 % (``python -m st_bertapprox.qa.reasoning`` prints the counts). Spot checks show the rules' misses, e.g.
"What year did consolidation cause ...?" is causal by rule 1 though it asks for a year, and "What kind of data did
ABC begin using ... to better target ads?" is comparative by "better".
"""

from __future__ import annotations

import re
from collections import Counter

REASONING_TYPES: tuple[str, ...] = ("factual", "causal", "comparative", "quantitative", "temporal", "manner")

_COMPARATIVES = (
    "larger largest bigger biggest higher highest greater greatest longer longest smaller smallest shorter shortest "
    "older oldest younger youngest newer newest earlier earliest later latest lower lowest heavier heaviest "
    "faster fastest slower slowest stronger strongest wider widest richer richest"
).split()

_RULES: tuple[tuple[str, re.Pattern], ...] = (
    (
        "causal",
        re.compile(
            r"\bwhy\b|\b(causes?|caused|causing|reasons?|because|due to|leads? to|led to|results? in|resulted in|"
            r"result of|consequences?|effects? of|purpose)\b"
        ),
    ),
    (
        "comparative",
        re.compile(
            r"\b(than|compared?|comparison|versus|vs|differences?|differ|more|less|fewer|most|least|better|best|worse"
            r"|worst|" + "|".join(_COMPARATIVES) + r")\b"
        ),
    ),
    (
        "quantitative",
        re.compile(
            r"\bhow (many|much|long|far|old|big|large|often|high|tall|fast|deep|wide|heavy)\b|"
            r"\b(what|which) (percentage|percent|number|amount|proportion|fraction|size|population)\b"
        ),
    ),
    (
        "temporal",
        re.compile(r"^\W*when\b|\b(what|which) (year|date|century|decade|month|day|era|period|season)\b|in what year"),
    ),
    ("manner", re.compile(r"\bhow\b|\bin what way\b|\bby what means\b")),
)


def weak_reasoning_label(question: str) -> str:
    """The weak reasoning type of a question by the rules of this module's docstring (first match, else factual).

    Example::

        >>> weak_reasoning_label("Why did the Shah of Iran give an interview?")
        'causal'
        >>> weak_reasoning_label("How many points did the Panthers defense surrender?")
        'quantitative'
    """
    text = question.lower()
    return next((label for label, rule in _RULES if rule.search(text)), "factual")


def label_counts(questions: list[str]) -> Counter:
    """How many of ``questions`` get each weak reasoning type (:func:`weak_reasoning_label`)."""
    return Counter(weak_reasoning_label(q) for q in questions)


if __name__ == "__main__":
    from st_bertapprox.data.shared import load_xquad

    questions = [qa["question"] for article in load_xquad() for p in article["paragraphs"] for qa in p["qas"]]
    counts = label_counts(questions)
    for label in REASONING_TYPES:
        print(f"{label:13s} {counts[label]:5d}  {100 * counts[label] / len(questions):5.1f} %")
