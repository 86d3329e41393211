"""The reward server's settings (:class:`ServerConfig`), shared by its parts."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ServerConfig"]


@dataclass
class ServerConfig:
    """Settings of one server; every limit has a safe default."""

    graders: dict[str, str] = field(default_factory=dict)
    """Graders to compile at start-up: name -> path to grader JSON."""
    default_grader: str | None = None
    """Name or id used when a request names none (default: the first preloaded grader)."""
    sandbox: str = "auto"
    ray: str | None = None
    """A Ray cluster (``auto`` or ``HOST:PORT``) whose nodes run the python graders."""
    api_key: str | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    max_inflight_rows: int = 200_000
    """Rows admitted at once across all requests; more are refused with 429."""
    max_rows_per_request: int = 100_000
    stream_chunk: int = 512
    retry_after_seconds: int = 2
    strip_tokens: tuple[str, ...] = ()
    """Special tokens removed from OpenRLHF samples besides the default ones (``--strip-tokens``)."""
    reasoning: str = "strip"
    """OpenRLHF samples: ``strip`` grades a completion's final answer, without a reasoning
    model's reasoning before it (as OpenAI's grader saw it); ``keep`` grades all of it
    (``--reasoning``)."""
    tool_calls: str = "parse"
    """OpenRLHF samples: ``parse`` grades the tool calls written in a completion as
    ``sample.output_tools`` (as OpenAI's grader saw them); ``keep`` leaves them in the
    text (``--tool-calls``)."""
    request_timeout: float | None = 600.0
    """Seconds a request's python samples may take together (a streamed request: each
    chunk); the rest then fail with ``unresponsive_reward_error``. ``None``: no bound."""
    max_inline_graders: int = 256
    """Graders sent inline (``graders/run``, a grader JSON in ``/v1/grade``) kept compiled,
    least recently used out first; a new one is never refused."""
    max_inline_grader_mb: int = 64
    """The same bound on the inline graders' canonical JSON, in MiB."""
    max_named_graders: int = 4096
    """Names ``POST /v1/graders`` registers at most; one more is a 400."""
