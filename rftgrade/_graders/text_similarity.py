"""``text_similarity``: one of eleven library metrics between input and reference."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from rftgrade._embeddings import cosine_scores, default_embedder
from rftgrade._graders.base import CompiledGrader, Row, Runtime, render
from rftgrade._metrics import Metric, get_metric
from rftgrade._result import GradeResult
from rftgrade._specs import TextSimilarityGrader
from rftgrade._template import parse_template

__all__ = ["CompiledTextSimilarity"]


class CompiledTextSimilarity(CompiledGrader):
    def __init__(self, spec: TextSimilarityGrader) -> None:
        super().__init__(spec)
        self.input = parse_template(spec.input)
        self.reference = parse_template(spec.reference)
        self.metric_name = spec.evaluation_metric
        self.is_sync = self.metric_name != "cosine"
        # Built lazily: METEOR loads WordNet, which validation should not pay for.
        self._metric: Metric | None = None

    def _render(self, row: Row) -> tuple[GradeResult, str | None, str | None]:
        result = self.new_result()
        hyp = render(self.input, row, result)
        ref = render(self.reference, row, result) if hyp is not None else None
        return result, hyp, ref

    def grade_one(self, row: Row) -> GradeResult:
        metric = self._metric
        if metric is None:
            metric = self._metric = get_metric(self.metric_name)
        result, hyp, ref = self._render(row)
        if hyp is None or ref is None:
            return result
        try:
            result.reward = metric(hyp, ref)
        except Exception as exc:  # a library failing on odd input is that row's problem
            result.fail("other_error", f"{self.metric_name} failed: {type(exc).__name__}: {exc}")
        return result

    async def grade_batch(self, rows: Sequence[Row], runtime: Runtime) -> list[GradeResult]:
        if self.is_sync:
            return self.grade_rows(rows)
        start = time.perf_counter()
        rendered = [self._render(row) for row in rows]
        todo = [(r, h, f) for r, h, f in rendered if h is not None and f is not None]
        embedder = runtime.embedder or default_embedder()
        pairs = [(h, f) for _, h, f in todo if h is not None and f is not None]
        try:
            scores = await asyncio.to_thread(cosine_scores, embedder, pairs)
        except Exception as exc:
            for result, _, _ in todo:
                result.fail("other_error", f"cosine embeddings failed ({embedder.name}): {exc}")
        else:
            for (result, _, _), score in zip(todo, scores, strict=True):
                result.reward = score
                result.scores["embedder"] = embedder.name
        elapsed = (time.perf_counter() - start) / max(len(rows), 1)
        for result, _, _ in rendered:
            result.execution_time = elapsed
        return [r for r, _, _ in rendered]
