"""The RFT-readiness run: sample the base model N times per row, grade, summarise.

Sampling and grading overlap: ``concurrency`` workers fetch samples while one
consumer grades whatever has arrived, in batches, through :class:`rftgrade.Grader`
(so sandbox pools and judges work as in every other face), and appends each
graded sample to ``samples.jsonl`` straight away.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rftgrade._exceptions import DataError
from rftgrade._grader import Grader
from rftgrade._reasoning import split_answer
from rftgrade._specs import ScoreModelGrader
from rftgrade.evaluate._client import SamplingClient, SamplingError, build_sample, request_body
from rftgrade.evaluate._data import DataProblem, Record, load_records, prompt_sha, read_rows, write_records
from rftgrade.evaluate._stats import RowRewards, summarize_rows

__all__ = ["EvalConfig", "EvalOutcome", "EvalProgress", "arun_eval", "run_eval"]

NOT_SAMPLED = "not_sampled"
_IDENTITY = ("model", "temperature", "max_tokens", "reasoning", "tool_calls")
_GRADE_SLICE = 32


@dataclass
class EvalConfig:
    """How to sample. ``base_url``/``api_key`` ``None`` read ``OPENAI_BASE_URL``/``OPENAI_API_KEY``."""

    model: str
    samples_per_row: int = 8
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 32
    temperature: float | None = 1.0
    max_tokens: int | None = None
    pass_threshold: float | None = None
    """A sample passes when its reward >= this; default the grader's ``pass_threshold``, else 1.0."""
    timeout: float = 300.0
    """Seconds one request may take before it is retried."""
    max_retries: int = 5
    backoff: float = 1.0
    response_format: Any = None
    """Sent for rows without their own (a fine-tuning job's ``response_format``)."""
    reasoning: str = "strip"
    """``strip``: grade each reply's final answer, without a reasoning model's reasoning
    before it (as the trainer adapters do, and as OpenAI's grader saw it); ``keep``: all of it."""
    tool_calls: str = "parse"
    """``parse``: tool calls an endpoint left in a reply's text are its ``output_tools``
    (as the trainer adapters read them); ``keep``: they stay text."""
    grade_batch: int = 256
    give_up_after: int | None = None
    """Consecutive failed samples after which the rest are not attempted (default
    ``max(16, 2 * concurrency)``): a dead endpoint should not cost minutes of retries."""


@dataclass
class EvalProgress:
    """Counts for a progress bar, after every graded batch."""

    total: int
    done: int = 0
    reused: int = 0
    not_sampled: int = 0


@dataclass
class EvalOutcome:
    """What :func:`run_eval` wrote and found."""

    report: dict[str, Any]
    paths: dict[str, Path]
    problems: list[DataProblem] = field(default_factory=list)
    """Dataset lines that could not be used (the run went on without them)."""
    sample_problems: list[DataProblem] = field(default_factory=list)

    @property
    def not_sampled(self) -> int:
        """Samples the endpoint never gave (their rows are not scored)."""
        return int(self.report["samples"]["not_sampled"])


def _score_range(grader: Grader) -> tuple[float, float]:
    spec = grader.spec
    if isinstance(spec, ScoreModelGrader) and spec.range:
        return float(spec.range[0]), float(spec.range[1])
    return 0.0, 1.0


def _threshold(grader: Grader, config: EvalConfig) -> float:
    if config.pass_threshold is not None:
        return config.pass_threshold
    if grader.spec.pass_threshold is not None:
        return float(grader.spec.pass_threshold)
    return 1.0


def _reasoning_counts(records: Iterable[Record]) -> dict[str, int]:
    """How many replies held a reasoning model's reasoning, and how many ended inside it
    (read from the reply as the endpoint gave it, kept in the sample's ``choices``)."""
    held = unfinished = 0
    for record in records:
        sample = record.sample
        choices = sample.get("choices") if isinstance(sample, dict) else None
        message = (choices[0] or {}).get("message") if isinstance(choices, list) and choices else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            answer = split_answer(content)
            held += answer.had_reasoning
            unfinished += answer.unfinished
    return {"with_reasoning": held, "ended_in_reasoning": unfinished}


def _tool_call_counts(records: Iterable[Record]) -> dict[str, int]:
    """How many replies made tool calls: parsed by the endpoint, or read from its text
    (an endpoint without a tool parser leaves them there)."""
    by_endpoint = from_text = 0
    for record in records:
        sample = record.sample
        if not isinstance(sample, dict) or not sample.get("output_tools"):
            continue
        choices = sample.get("choices")
        message = (choices[0] or {}).get("message") if isinstance(choices, list) and choices else None
        if isinstance(message, dict) and message.get("tool_calls"):
            by_endpoint += 1
        else:
            from_text += 1
    return {"by_endpoint": by_endpoint, "from_text": from_text}


def _file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _check_identity(meta: dict[str, Any], config: EvalConfig, out: Path) -> None:
    for key in _IDENTITY:
        if key in meta and meta[key] != getattr(config, key):
            raise DataError(
                f"{out} holds samples made with {key}={meta[key]!r}, not {getattr(config, key)!r}; "
                f"pass another --out, or delete {out / 'samples.jsonl'} to start over"
            )


def run_eval(
    grader: Grader,
    data: Path,
    out: Path,
    config: EvalConfig,
    *,
    samples_file: Path | None = None,
    grader_form: str | None = None,
    job: dict[str, Any] | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
) -> EvalOutcome:
    """Sample (or read ``samples_file``), grade and write ``samples.jsonl``, ``eval.json``,
    ``report.html`` and ``summary.md`` into ``out``.

    Raises:
        DataError: ``data`` has no usable row, or ``out`` holds samples of another model.
    """
    return asyncio.run(
        arun_eval(
            grader,
            data,
            out,
            config,
            samples_file=samples_file,
            grader_form=grader_form,
            job=job,
            on_progress=on_progress,
        )
    )


async def arun_eval(
    grader: Grader,
    data: Path,
    out: Path,
    config: EvalConfig,
    *,
    samples_file: Path | None = None,
    grader_form: str | None = None,
    job: dict[str, Any] | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
) -> EvalOutcome:
    """Async :func:`run_eval`."""
    from rftgrade.evaluate._report import write_outputs

    started = time.perf_counter()
    rows, problems = read_rows(data)
    if not rows:
        detail = f" ({problems[0]}...)" if problems else ""
        raise DataError(f"no usable row in {data}{detail}")
    n_per_row = config.samples_per_row
    out.mkdir(parents=True, exist_ok=True)
    store, meta_path = out / "samples.jsonl", out / "run.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    fmt = config.response_format if config.response_format is not None else (job or {}).get("response_format")
    by_index = {r.index: r for r in rows}
    bodies = {
        r.index: request_body(
            r.item,
            model=config.model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            response_format=fmt,
        )
        for r in rows
    }
    shas = {i: prompt_sha(b) for i, b in bodies.items()}

    if samples_file is not None:
        existing, sample_problems = load_records(samples_file)
        same_grader = False  # samples made elsewhere are always graded here
    else:
        if store.is_file():
            _check_identity(meta, config, out)
        existing, sample_problems = load_records(store)
        same_grader = meta.get("grader_id") == grader.id
    final: dict[tuple[int, int], Record] = {}
    to_grade: list[Record] = []
    for key, record in existing.items():
        if record.row not in by_index or record.n >= n_per_row or not record.sampled:
            continue
        if record.prompt and record.prompt != shas[record.row]:
            continue  # the row's prompt changed since: sample it again
        if same_grader and record.reward is not None:
            final[key] = record
        else:
            record.reward, record.errors, record.error_messages = None, [], []
            to_grade.append(record)
    reused = len(final)
    wanted = [(r.index, n) for r in rows for n in range(n_per_row)]
    queued = {(r.row, r.n) for r in to_grade}
    missing = [key for key in wanted if key not in final and key not in queued]
    if samples_file is not None:
        for i, n in missing:
            final[(i, n)] = Record(
                i, n, errors=[NOT_SAMPLED], error_messages=[f"no sample for row {i}, n {n} in {samples_file}"]
            )
        missing = []

    meta_now = {key: getattr(config, key) for key in _IDENTITY}
    # The grader's id is recorded only once every sample carries its reward: a run
    # cut short keeps the old id, so the next one regrades rather than trust stale rewards.
    meta_path.write_text(json.dumps({**meta_now, "grader_id": meta.get("grader_id", grader.id)}) + "\n")

    progress = EvalProgress(total=len(wanted), done=len(final), reused=reused)
    progress.not_sampled = sum(1 for r in final.values() if not r.sampled)
    client = SamplingClient(
        base_url=config.base_url,
        api_key=config.api_key,
        timeout=config.timeout,
        max_retries=config.max_retries,
        backoff=config.backoff,
    )
    queue: asyncio.Queue[Record | None] = asyncio.Queue()
    pending: dict[tuple[int, int], Record] = {}
    grading_seconds = 0.0
    graded_now = 0
    give_up = config.give_up_after or max(16, 2 * config.concurrency)
    failures_in_a_row = 0
    jobs: Iterator[tuple[int, int]] = iter(missing)

    async def sampler() -> None:
        nonlocal failures_in_a_row
        for i, n in jobs:  # one shared iterator: each worker takes the next job
            if failures_in_a_row >= give_up:
                record = Record(
                    i,
                    n,
                    errors=[NOT_SAMPLED],
                    error_messages=[f"not tried: the previous {give_up} samples all failed"],
                    prompt=shas[i],
                )
            else:
                try:
                    response = await client.sample(bodies[i])
                    fmt_i = bodies[i].get("response_format")
                    record = Record(
                        i,
                        n,
                        sample=build_sample(
                            response, fmt_i, config.reasoning, config.tool_calls, bodies[i].get("tools")
                        ),
                        prompt=shas[i],
                    )
                    failures_in_a_row = 0
                except SamplingError as exc:
                    failures_in_a_row += 1
                    record = Record(i, n, errors=[NOT_SAMPLED], error_messages=[str(exc)], prompt=shas[i])
            pending[(i, n)] = record
            await queue.put(record)

    async def consumer(fh: Any) -> None:
        nonlocal grading_seconds, graded_now
        finished = False
        while not finished:
            batch: list[Record] = []
            first = await queue.get()
            if first is None:
                return
            batch.append(first)
            while len(batch) < config.grade_batch and not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    finished = True
                    break
                batch.append(more)
            sampled = [r for r in batch if r.sampled]
            if sampled:
                t0 = time.perf_counter()
                rows_in = [{"sample": r.sample, "item": by_index[r.row].item} for r in sampled]
                results = []
                # A deterministic grader runs on this loop: in slices, so a 256-sample METEOR
                # batch (~0.2 s) does not hold every in-flight response that long. (On a
                # thread it ran slower in bench_eval: the two threads trade the GIL.) Sandbox
                # and judge graders run elsewhere and take the whole batch at once.
                step = _GRADE_SLICE if grader.compiled.is_sync else len(rows_in)
                for start in range(0, len(rows_in), step):
                    results += await grader.arun_batch(rows_in[start : start + step], dedupe=True)
                    await asyncio.sleep(0)
                grading_seconds += time.perf_counter() - t0
                graded_now += len(sampled)
                for record, result in zip(sampled, results, strict=True):
                    record.reward = result.reward
                    record.errors = result.flags()
                    record.error_messages = list(result.error_messages) if not result.ok else []
            for record in batch:
                record.write(fh)
                final[(record.row, record.n)] = record
                pending.pop((record.row, record.n), None)
                progress.done += 1
                progress.not_sampled += not record.sampled
            if on_progress is not None:
                on_progress(progress)

    if on_progress is not None:
        on_progress(progress)
    fh = store.open("w" if samples_file is not None else "a", encoding="utf-8")
    if fh.tell() and not store.read_bytes().endswith(b"\n"):
        fh.write("\n")  # after a torn last line, so the next record starts a line of its own
    try:
        for record in to_grade:
            pending[(record.row, record.n)] = record
            queue.put_nowait(record)
        grading = asyncio.create_task(consumer(fh))
        workers = [
            asyncio.create_task(sampler()) for _ in range(max(1, min(config.concurrency, len(missing))))
        ]
        try:
            all_sampled: asyncio.Future[Any] = asyncio.gather(*workers)
            watched: set[asyncio.Future[Any]] = {all_sampled, grading}
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if grading.done():
                grading.result()  # a grader that raised stops the run (its samples are kept)
            await all_sampled
            await queue.put(None)
            await grading
        finally:
            for task in [*workers, grading]:
                task.cancel()
    finally:
        # Sampled but not yet graded (Ctrl-C, a crash): keep the sample; the next run grades it.
        for record in pending.values():
            if record.sampled and record.reward is None:
                record.write(fh)
        fh.close()
        await client.aclose()
    # Samples this run did not use (a smaller -n, rows no longer in DATA) stay on disk.
    unused = [r for key, r in existing.items() if key not in final] if samples_file is None else []
    write_records(store, [*final.values(), *unused])
    meta_path.write_text(json.dumps({**meta_now, "grader_id": grader.id}) + "\n")

    per_row: list[RowRewards] = []
    for r in rows:
        records = [final.get((r.index, n)) for n in range(n_per_row)]
        graded = [x for x in records if x is not None and x.sampled and x.reward is not None]
        flags: Counter[str] = Counter()
        for x in graded:
            flags.update(x.errors)
        reasons = [m for x in records if x is not None and not x.sampled for m in x.error_messages]
        per_row.append(
            RowRewards(
                r.index,
                r.line,
                [x.reward for x in graded if x.reward is not None],
                missing=n_per_row - len(graded),
                reasons=reasons,
                flags=flags,
            )
        )
    stats = summarize_rows(
        per_row,
        samples_per_row=n_per_row,
        threshold=_threshold(grader, config),
        score_range=_score_range(grader),
    )
    wall = time.perf_counter() - started
    s = client.stats
    report: dict[str, Any] = {
        "rows": len(rows),
        "samples_per_row": n_per_row,
        **stats,
        "rows_not_sampled": [p.index for p in per_row if not p.complete],
        "unreadable_lines": [{"line": p.line, "error": p.message} for p in problems],
        "model": config.model,
        "base_url": client.base_url if samples_file is None else None,
        "samples_file": str(samples_file) if samples_file is not None else None,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "score_range": list(_score_range(grader)),
        "grader": {"id": grader.id, "name": grader.name, "type": grader.type},
        "grader_form": grader_form or "grader",
        # `rftgrade compare` checks that two runs read the same file.
        "dataset": {"path": str(data), "sha256": _file_sha256(data)},
        "samples": {
            "total": len(wanted),
            "reused": reused,
            "graded_now": graded_now,
            "not_sampled": sum(1 for x in final.values() if not x.sampled),
        },
        "reasoning": {"mode": config.reasoning, **_reasoning_counts(final.values())},
        "tool_calls": {"mode": config.tool_calls, **_tool_call_counts(final.values())},
        "timing": {
            "wall_s": wall,
            "grading_s": grading_seconds,
            "endpoint_busy_s": s.busy_seconds,
            "request_s_total": s.request_seconds,
            "requests": s.requests,
            "retries": s.retries,
        },
    }
    if job:
        report["job"] = job
    paths = write_outputs(report, rows, out)
    paths["samples"] = store
    return EvalOutcome(report, paths, problems, sample_problems)
