"""One way for every trainer adapter to get rewards: in-process, or from ``rftgrade serve``.

In-process, graders are compiled once per process and share one sandbox pool
and judge (:class:`~rftgrade._registry.GraderRegistry`). Remote, rows go to a
running server's ``POST /v1/grade``. Both return OpenAI-shaped result dicts, in
order, and never raise for a bad sample.

Misconfiguration is loud: what can be checked before grading (a missing or invalid
grader file, an unknown sandbox, a malformed URL) raises :class:`RewardSourceError`
from :meth:`RewardSource.check`, which every adapter calls when it is built. What only
a call can reveal (the server is down, does not know the grader, refuses the token)
is logged at WARNING with the URL and the server's message the first time, then
counted (one line per :data:`LOG_EVERY` failures), as are samples that fail to grade.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from rftgrade._columns import Columns
from rftgrade._exceptions import RftgradeError
from rftgrade._json import dumps, loads
from rftgrade._reasoning import REASONING_MODES
from rftgrade._toolcalls import TOOL_CALL_MODES
from rftgrade.integrations._loud import LOG_EVERY, note_failure, reset_counter_locks
from rftgrade.integrations._samples import SampleCounts, note_samples, openai_sample

__all__ = [
    "LOG_EVERY",
    "RewardSource",
    "RewardSourceError",
    "SourceInfo",
    "batch_body",
    "grade_rewards",
    "grade_rows",
    "run_sync",
]

log = logging.getLogger("rftgrade.integrations")

T = TypeVar("T")


class RewardSourceError(RftgradeError, ValueError):
    """The adapter is misconfigured; the message says how to fix it."""


@dataclass(frozen=True)
class SourceInfo:
    """What an adapter needs to know about its grader before grading."""

    name: str
    """The grader's name (in-process) or the reference sent to the server."""
    sub_rewards: tuple[str, ...] | None
    """A ``multi`` grader's sub-grader keys (``()`` for others); ``None``: not known yet."""


@dataclass(frozen=True)
class RewardSource:
    """Where rewards come from. Picklable, so trainers can ship it to other processes.

    Attributes:
        grader: path to grader JSON (in-process), or for a server also a registered
            id or name; ``None`` uses the server's default grader.
        server_url: base URL of ``rftgrade serve`` (e.g. ``http://127.0.0.1:8000``);
            ``None`` grades in-process.
        api_key: bearer token for the server.
        sandbox: sandbox backend for in-process python graders.
        timeout: seconds a whole call may take before its rows are reported failed.
        reasoning: ``"strip"`` grades each completion's final answer, without the
            reasoning before it (``<think>...</think>``; :mod:`rftgrade._reasoning`), as
            OpenAI's grader saw it; ``"keep"`` grades the completion as decoded.
        tool_calls: ``"parse"`` grades the tool calls written in a completion
            (``<tool_call>...</tool_call>``, gpt-oss's ``to=functions.NAME``;
            :mod:`rftgrade._toolcalls`) as ``sample.output_tools``, as OpenAI's grader
            saw them; ``"keep"`` leaves them in the text.
    """

    grader: str | None = None
    server_url: str | None = None
    api_key: str | None = None
    sandbox: str = "auto"
    timeout: float = 300.0
    reasoning: str = "strip"
    tool_calls: str = "parse"

    @classmethod
    def from_env(cls) -> RewardSource:
        """``RFTGRADE_GRADER``, ``RFTGRADE_SERVER_URL``, ``RFTGRADE_API_KEY``,
        ``RFTGRADE_SANDBOX``, ``RFTGRADE_TIMEOUT``, ``RFTGRADE_REASONING``,
        ``RFTGRADE_TOOL_CALLS``."""
        timeout = os.environ.get("RFTGRADE_TIMEOUT", "300")
        try:
            seconds = float(timeout)
        except ValueError:
            raise RewardSourceError(
                f"RFTGRADE_TIMEOUT must be a number of seconds, got {timeout!r}"
            ) from None
        return cls(
            grader=os.environ.get("RFTGRADE_GRADER") or None,
            server_url=os.environ.get("RFTGRADE_SERVER_URL") or None,
            api_key=os.environ.get("RFTGRADE_API_KEY") or None,
            sandbox=os.environ.get("RFTGRADE_SANDBOX", "auto"),
            timeout=seconds,
            reasoning=os.environ.get("RFTGRADE_REASONING") or "strip",
            tool_calls=os.environ.get("RFTGRADE_TOOL_CALLS") or "parse",
        )

    @property
    def where(self) -> str:
        """Where rewards come from, for log lines."""
        if self.server_url:
            return f"{self.server_url.rstrip('/')}/v1/grade (grader {self.grader or '<server default>'})"
        return f"in-process grader {self.grader}"

    def check(self) -> SourceInfo:
        """Check what can be checked without grading; compile an in-process grader.

        Raises:
            RewardSourceError: no grader, a grader file missing or invalid, an unknown
                or unavailable sandbox, a malformed server URL (with the fix).
        """
        if self.timeout <= 0:
            raise RewardSourceError(f"timeout must be positive, got {self.timeout}")
        if self.reasoning not in REASONING_MODES:
            raise RewardSourceError(
                f"reasoning is {self.reasoning!r} (RFTGRADE_REASONING / reasoning=): use strip (grade "
                "the final answer, as OpenAI's grader saw it) or keep (grade the completion with its reasoning)"
            )
        if self.tool_calls not in TOOL_CALL_MODES:
            raise RewardSourceError(
                f"tool_calls is {self.tool_calls!r} (RFTGRADE_TOOL_CALLS / tool_calls=): use parse (grade "
                "a completion's tool calls as output_tools, as OpenAI's grader saw them) or keep (leave them "
                "in the text)"
            )
        if self.server_url:
            parts = urlsplit(self.server_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise RewardSourceError(
                    f"server_url {self.server_url!r} is not a URL like http://127.0.0.1:8000 "
                    "(set RFTGRADE_SERVER_URL / server_url to rftgrade serve's address)"
                )
            return SourceInfo(self.grader or "rftgrade", _SUB_REWARDS.get(self))
        return _grader_info(self)


# -- in-process graders, one per process ------------------------------------------
_REGISTRIES: dict[str, Any] = {}
_GRADERS: dict[RewardSource, Any] = {}
_SUB_REWARDS: dict[RewardSource, tuple[str, ...]] = {}
_LOCK = threading.Lock()


def _registry(sandbox: str) -> Any:
    from rftgrade._registry import GraderRegistry

    # RFTGRADE_RAY=auto: inside a verl job (already a Ray cluster) python graders run
    # on the cluster's nodes instead of this process's machine.
    ray = os.environ.get("RFTGRADE_RAY") or None
    key = f"{sandbox}|{ray or ''}"
    with _LOCK:
        if key not in _REGISTRIES:
            _REGISTRIES[key] = GraderRegistry(sandbox=sandbox, ray=ray)
        return _REGISTRIES[key]


def _sub_keys(spec_dict: dict[str, Any]) -> tuple[str, ...]:
    graders = spec_dict.get("graders")
    return tuple(sorted(graders)) if spec_dict.get("type") == "multi" and isinstance(graders, dict) else ()


def _grader_info(source: RewardSource) -> SourceInfo:
    from rftgrade._exceptions import BackendUnavailableError, GraderValidationError
    from rftgrade.sandbox import BACKENDS

    grader = _GRADERS.get(source)
    if grader is None:
        if not source.grader:
            raise RewardSourceError(
                "no grader: pass a grader JSON path (RFTGRADE_GRADER=/path/grader.json), "
                "or a server_url (RFTGRADE_SERVER_URL) to grade through rftgrade serve"
            )
        if source.sandbox not in ("auto", *BACKENDS):
            raise RewardSourceError(
                f"unknown sandbox {source.sandbox!r}: choose auto, {', '.join(BACKENDS)} (RFTGRADE_SANDBOX)"
            )
        try:
            grader = _registry(source.sandbox).add(source.grader)
        except GraderValidationError as exc:
            hint = ""
            if not source.grader.endswith(".json") and not source.grader.lstrip().startswith("{"):
                hint = "; if it is a server's grader name, also set server_url (RFTGRADE_SERVER_URL)"
            raise RewardSourceError(f"grader {source.grader!r}: {exc}{hint}") from None
        except BackendUnavailableError as exc:
            raise RewardSourceError(
                f"grader {source.grader!r} runs python, but {exc} (set RFTGRADE_SANDBOX / sandbox)"
            ) from None
        with _LOCK:
            _GRADERS[source] = grader
    return SourceInfo(grader.name, _sub_keys(grader.to_dict()))


def _reset_after_fork() -> None:
    # A forked child (verl's prime manager forks a pool) inherits pools and a loop
    # thread that do not exist in it: start over there.
    global _LOCK, _BG_LOOP
    _REGISTRIES.clear()
    _GRADERS.clear()
    _LOCK = threading.Lock()
    _BG_LOOP = None
    reset_counter_locks()


class RemoteError(Exception):
    """The server answered with an HTTP error (its message kept) or could not be reached."""


def _failed(message: str) -> dict[str, Any]:
    from rftgrade._result import GradeResult

    result = GradeResult(reward=0.0, name="", type="")
    result.fail("other_error", message)
    return result.to_dict()


def _call_error(source: RewardSource, exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {source.timeout:g}s (RFTGRADE_TIMEOUT / timeout)"
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, RemoteError) else str(exc)


def _note_failed_samples(source: RewardSource, failed: list[str]) -> None:
    if failed:
        note_failure("samples that failed to grade", source.where, failed[0], len(failed))


_TRAINER_LENGTH = (
    "verl data.max_response_length, TRL max_completion_length, OpenRLHF --rollout.max_new_tokens"
)


def openai_rows(source: RewardSource, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each sample as OpenAI's grader saw it: the reasoning cut, the tool
    calls as ``output_tools`` (:mod:`rftgrade.integrations._samples`); rows whose sample
    is unchanged stay the same objects."""
    if source.reasoning == "keep" and source.tool_calls == "keep":
        return rows
    out: list[dict[str, Any]] = []
    counts = SampleCounts()
    for row in rows:
        if type(row) is dict and "sample" in row:
            sample = openai_sample(
                row["sample"], source.reasoning, source.tool_calls, counts, item=row.get("item")
            )
            if sample is not row["sample"]:
                row = {**row, "sample": sample}
        out.append(row)
    note_samples(source.where, counts, _TRAINER_LENGTH)
    return out


async def grade_rows(source: RewardSource, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Grade ``rows`` (``{"sample", "item"}``) and return one response dict each."""
    if not rows:
        return []
    rows = openai_rows(source, rows)
    try:
        async with asyncio.timeout(source.timeout):
            if source.server_url:
                results: list[dict[str, Any]] = (await _post(source, batch_body(rows)))["results"]
            else:
                _grader_info(source)
                graded = await _GRADERS[source].arun_batch(_in_process(rows), dedupe=True)
                results = [r.to_dict() for r in graded]
    except Exception as exc:  # the trainer must never see an exception from its reward
        message = _call_error(source, exc)
        note_failure("reward calls that failed", source.where, message, len(rows))
        return [_failed(message) for _ in rows]
    _note_failed_samples(source, [m for m in map(_message, results) if m is not None])
    return results


def _message(result: dict[str, Any]) -> str | None:
    metadata = result.get("metadata") or {}
    errors = metadata.get("errors") or {}
    if not any(v is True for v in errors.values()):
        return None
    messages = metadata.get("error_messages") or [k for k, v in errors.items() if v is True]
    return "; ".join(str(m) for m in messages)


async def grade_rewards(source: RewardSource, rows: list[dict[str, Any]]) -> list[tuple[float, bool]]:
    """``(reward, failed)`` for each row: all a trainer that wants numbers reads.

    Remote, it asks the server for compact answers (no full result per row to
    build, send and parse); in-process, it reads the results directly.
    """
    if not rows:
        return []
    rows = openai_rows(source, rows)
    try:
        async with asyncio.timeout(source.timeout):
            if source.server_url:
                answer = await _post(source, {**batch_body(rows), "compact": True})
                failures = answer.get("failures", [])
                _note_failed_samples(
                    source, ["; ".join(f.get("messages") or f.get("flags") or []) for f in failures]
                )
                failed = {int(f["index"]) for f in failures}
                return [(float(r), i in failed) for i, r in enumerate(answer["rewards"])]
            _grader_info(source)
            results = await _GRADERS[source].arun_batch(_in_process(rows), dedupe=True)
    except Exception as exc:  # a timeout included: the trainer must never see an exception from its reward
        note_failure("reward calls that failed", source.where, _call_error(source, exc), len(rows))
        return [(0.0, True) for _ in rows]
    _note_failed_samples(source, ["; ".join(r.error_messages) for r in results if not r.ok])
    return [(r.reward, not r.ok) for r in results]


async def sub_rewards(source: RewardSource) -> tuple[str, ...] | None:
    """A grader's sub-grader keys; remote, asked of the server once per process (``None``
    while it cannot answer). Concurrent callers on one loop share one request."""
    if not source.server_url:
        return _grader_info(source).sub_rewards
    known = _SUB_REWARDS.get(source)
    if known is not None:
        return known
    key = (id(asyncio.get_running_loop()), source)
    task = _KEY_TASKS.get(key)
    if task is None or task.done():
        task = _KEY_TASKS[key] = asyncio.ensure_future(_fetch_sub_rewards(source))
    return await asyncio.shield(task)


_KEY_TASKS: dict[tuple[int, RewardSource], asyncio.Future[tuple[str, ...] | None]] = {}


async def _fetch_sub_rewards(source: RewardSource) -> tuple[str, ...] | None:
    import httpx

    base = source.server_url.rstrip("/")  # type: ignore[union-attr]
    url = f"{base}/v1/graders/{source.grader}" if source.grader else f"{base}/v1/graders"
    try:
        async with httpx.AsyncClient(timeout=min(source.timeout, 30.0), headers=_headers(source)) as client:
            response = await client.get(url)
            if response.status_code >= 400:
                return None  # the grading call reports why, with the server's message
            answer = response.json()
            if not source.grader:
                default = answer.get("default")
                if not default:
                    return None
                response = await client.get(f"{base}/v1/graders/{default}")
                answer = response.json()
    except Exception:
        return None
    keys = _sub_keys(answer.get("grader") or {})
    _SUB_REWARDS[source] = keys
    return keys


def batch_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``rows`` as a ``POST /v1/grade`` body: as ``groups`` when neighbouring rows
    share their item (a GRPO batch: a prompt's samples side by side, each item sent
    once instead of once per sample, ~40% of the body here), else as ``rows``."""
    groups: list[dict[str, Any]] = []
    for row in rows:
        if type(row) is not dict or "sample" not in row or len(row) > 2:
            return {"rows": rows}  # only plain rows are regrouped: the rest keep their own flags
        item = row.get("item")
        last = groups[-1] if groups else None
        if last is not None and (last["item"] is item or last["item"] == item):
            last["samples"].append(row["sample"])
        else:
            groups.append({"item": item, "samples": [row["sample"]]})
    return {"groups": groups} if 2 * len(groups) <= len(rows) else {"rows": rows}


def _in_process(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | Columns:
    """``rows`` for an in-process grader: neighbours with equal items (a prompt's
    completions; trainers build one item dict per sample) get one item object, so
    that the sandbox sends and parses it once per chunk (see :func:`batch_body`)."""
    body = batch_body(rows)
    if "groups" not in body:
        return rows
    return Columns.from_groups((group["item"], group["samples"]) for group in body["groups"])


def _headers(source: RewardSource) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if source.api_key:
        headers["authorization"] = f"Bearer {source.api_key}"
    return headers


async def _post(source: RewardSource, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    if source.grader:
        body = {**body, "grader": source.grader}
    content = dumps(body)
    url = source.server_url.rstrip("/") + "/v1/grade"  # type: ignore[union-attr]
    async with httpx.AsyncClient(timeout=source.timeout, headers=_headers(source)) as client:
        for attempt in range(6):
            try:
                response = await client.post(url, content=content)
            except httpx.TransportError as exc:
                raise RemoteError(
                    f"cannot reach {url} ({type(exc).__name__}: {exc}); is rftgrade serve running there?"
                ) from None
            if response.status_code == 429:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")) * (1 + attempt / 2))
                continue
            if response.status_code >= 400:
                raise RemoteError(f"{url} answered {response.status_code}: {_server_message(response)}")
            answer: dict[str, Any] = loads(response.content)
            return answer
    raise RemoteError(f"{url} stayed overloaded (429) through 6 attempts")


def _server_message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:
        return response.text[:500] or "(no message)"


# -- sync callers ------------------------------------------------------------------
_BG_LOOP: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _BG_LOOP
    with _LOCK:
        if _BG_LOOP is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rftgrade-rewards", daemon=True).start()
            _BG_LOOP = loop
        return _BG_LOOP


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this process's rewards loop (a daemon thread) and wait for it.

    Safe from any thread, with or without a running loop of its own: calls made at
    once from several threads (verl runs sync scores in a thread pool) share one
    loop, so they are gathered into one batch.
    """
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


os.register_at_fork(after_in_child=_reset_after_fork)
