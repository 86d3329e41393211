"""The two interfaces through which non-deterministic graders run.

``python`` graders hand their calls to a :class:`PythonExecutor` (a sandbox pool,
see :mod:`rftgrade.sandbox`); ``score_model`` / ``label_model`` graders hand
rendered prompts to a :class:`JudgeExecutor` (see :mod:`rftgrade.judge`). The
grader core only knows these protocols, so each backend can be swapped, tested
with the same conformance checks, and reused by the CLI, server and adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, overload, runtime_checkable

from rftgrade._rawitem import RawItem
from rftgrade._result import TokenUsage

__all__ = [
    "JudgeExecutor",
    "JudgeReply",
    "JudgeRequest",
    "PythonCall",
    "PythonCalls",
    "PythonExecutor",
    "PythonOutcome",
    "PythonProgram",
]


@dataclass(frozen=True)
class PythonProgram:
    """A python grader's source, identified by a content hash so pools can be reused."""

    source: str
    digest: str
    name: str = ""
    isolation: str | None = None
    """``worker`` or ``sample`` from the grader's JSON; ``None`` leaves it to the executor."""
    auto_isolation: str = "worker"
    """What the source needs (:func:`rftgrade._isolation.choose_isolation`): used
    when neither the grader's JSON nor the executor's caller chose."""
    isolation_reason: str = ""


class PythonCall(NamedTuple):
    """One ``grade(sample, item)`` call.

    ``sample`` is the sample in its compact wire form (:meth:`rftgrade.Sample.to_wire`:
    the model's text alone, or a dict); the sandbox worker expands it into
    OpenAI's sample dict. A tuple, not a dataclass: a batch builds one per row.
    """

    sample: str | dict[str, Any]
    item: dict[str, Any]


class PythonCalls(Sequence[PythonCall]):
    """Many calls kept as two columns, samples and items.

    A :class:`~collections.abc.Sequence` of :class:`PythonCall`, so any executor can
    index it; a sandbox pool slices the columns instead (one C-level copy per chunk,
    no tuple per row), and forwards items still in their JSON text
    (:class:`~rftgrade._rawitem.RawItem`) as that text. Indexing parses them.
    """

    __slots__ = ("items", "samples")

    def __init__(self, samples: list[str | dict[str, Any]], items: list[dict[str, Any] | RawItem]) -> None:
        if len(samples) != len(items):
            raise ValueError(f"{len(samples)} samples but {len(items)} items")
        self.samples = samples
        self.items = items

    def __len__(self) -> int:
        return len(self.samples)

    @overload
    def __getitem__(self, index: int) -> PythonCall: ...

    @overload
    def __getitem__(self, index: slice) -> PythonCalls: ...

    def __getitem__(self, index: int | slice) -> PythonCall | PythonCalls:
        if isinstance(index, slice):
            return PythonCalls(self.samples[index], self.items[index])
        item = self.items[index]
        return PythonCall(self.samples[index], item.parse() if type(item) is RawItem else item)  # type: ignore[arg-type]


class PythonOutcome(NamedTuple):
    """What one call produced: a finite reward, or a classified failure.

    A tuple of plain values: the garbage collector stops tracking it after its
    first pass, which matters when a batch holds 25,000 of them.
    """

    reward: float | None = None
    error: Literal["runtime", "server", "timeout"] | None = None
    error_type: str | None = None
    """Exception type for runtime errors; failure kind for server errors."""
    details: str | None = None
    """Message and trimmed traceback, for a person to read."""
    stdout: str = ""
    duration: float = 0.0


@runtime_checkable
class PythonExecutor(Protocol):
    """Runs python graders. Implementations must never raise for a bad sample.

    An executor may also offer ``async warm(program)``: start ``program``'s workers
    in the background (:meth:`rftgrade.Grader.warm` calls it where it exists).
    """

    name: str
    isolated: bool

    async def run(
        self,
        program: PythonProgram,
        calls: Sequence[PythonCall],
        *,
        timeout: float | None = None,
        batch_timeout: float | None = None,
    ) -> list[PythonOutcome]:
        """Grade every call; the result list matches ``calls`` one to one. ``timeout``
        bounds each call; ``batch_timeout`` all of them together (calls still
        unanswered then fail as timeouts)."""
        ...

    async def aclose(self) -> None:
        """Stop every worker this executor started."""
        ...


@dataclass(frozen=True)
class JudgeRequest:
    """One rendered request to a judge model."""

    model: str
    messages: tuple[dict[str, Any], ...]
    kind: Literal["score", "label"]
    sampling_params: dict[str, Any] = field(default_factory=dict)
    response_schema: dict[str, Any] | None = None
    """JSON schema the reply must follow (strict structured output where supported)."""
    labels: tuple[str, ...] = ()
    score_range: tuple[float, float] = (0.0, 1.0)

    def cache_key(self) -> str:
        """Stable identity of the request: model, rendered messages and sampling params."""
        import hashlib
        import json

        blob = json.dumps(
            [
                self.model,
                self.messages,
                self.kind,
                self.sampling_params,
                self.labels,
                self.score_range,
                self.response_schema,
            ],
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class JudgeReply:
    """What a judge backend returned for one request."""

    text: str | None = None
    refusal: str | None = None
    usage: TokenUsage | None = None
    model: str | None = None
    server_error: str | None = None
    """Set when the backend failed (after its retries); the text is then ignored."""
    expected_score: float | None = None
    """A probability-weighted score, for backends that read token probabilities."""
    label_probabilities: dict[str, float] | None = None


@runtime_checkable
class JudgeExecutor(Protocol):
    """Answers judge requests. Implementations must never raise for one bad request."""

    name: str

    async def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        """Answer every request; the result list matches ``requests`` one to one."""
        ...

    def can_serve(self, model: str) -> str | None:
        """``None`` if ``model`` can be served, else why not (checked at validation)."""
        ...

    async def aclose(self) -> None:
        """Release connections and models."""
        ...
