"""``multi``: sub-graders keyed by name, combined with ``calculate_output``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from rftgrade._formula import Formula, FormulaRuntimeError
from rftgrade._graders.base import CompiledGrader, Row, Runtime
from rftgrade._result import GradeResult, TokenUsage
from rftgrade._specs import MultiGrader

__all__ = ["CompiledMulti"]


class CompiledMulti(CompiledGrader):
    def __init__(self, spec: MultiGrader, subs: dict[str, CompiledGrader], formula: Formula) -> None:
        super().__init__(spec)
        self.subs = subs
        self.formula = formula
        self.is_sync = all(g.is_sync for g in subs.values())

    def sub_graders(self) -> dict[str, CompiledGrader]:
        return dict(self.subs)

    def _combine(self, per_key: dict[str, GradeResult], elapsed: float) -> GradeResult:
        result = self.new_result()
        result.execution_time = elapsed
        for key, sub in per_key.items():
            result.sub_rewards[key] = sub.reward
            result.errors.merge(sub.errors)
            result.error_messages.extend(f"{key}: {m}" for m in sub.error_messages)
            if sub.scores:
                result.scores[key] = sub.scores
            for model, usage in sub.token_usage_per_model.items():
                result.token_usage_per_model.setdefault(model, TokenUsage()).add(usage)
            if sub.sampled_model_name and not result.sampled_model_name:
                result.sampled_model_name = sub.sampled_model_name
        if result.token_usage_per_model:
            total = TokenUsage()
            for usage in result.token_usage_per_model.values():
                total.add(usage)
            result.token_usage = total
        failed = [k for k, sub in per_key.items() if sub.errors.any]
        if failed:
            # A formula over a failed part would look like a real score; a flagged
            # result is reward 0 everywhere, and sub_rewards still show the parts.
            result.reward = 0.0
            return result
        try:
            result.reward = self.formula.evaluate(result.sub_rewards)
        except FormulaRuntimeError as exc:
            result.fail("other_error", f"calculate_output {self.formula.source!r}: {exc}")
        return result

    def grade_one(self, row: Row) -> GradeResult:
        start = time.perf_counter()
        per_key = {key: sub.grade_one(row) for key, sub in self.subs.items()}
        return self._combine(per_key, time.perf_counter() - start)

    async def grade_batch(self, rows: Sequence[Row], runtime: Runtime) -> list[GradeResult]:
        if self.is_sync:
            return self.grade_rows(rows)
        start = time.perf_counter()
        keys = list(self.subs)
        # Sub-graders run side by side: a python sandbox and a judge overlap.
        columns = await asyncio.gather(*(self.subs[k].grade_batch(rows, runtime) for k in keys))
        elapsed = (time.perf_counter() - start) / max(len(rows), 1)
        return [
            self._combine({k: columns[i][j] for i, k in enumerate(keys)}, elapsed) for j in range(len(rows))
        ]
