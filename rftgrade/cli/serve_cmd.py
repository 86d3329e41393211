"""``rftgrade serve``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["serve_cmd"]


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    grader: Annotated[
        Optional[list[str]],
        typer.Option("--grader", help="Preload NAME=path.json (repeatable); the first is the default."),
    ] = None,
    sandbox: Annotated[
        Optional[str], typer.Option("--sandbox", help="docker, bwrap or process (NOT isolated).")
    ] = None,
    ray: Annotated[
        Optional[str],
        typer.Option(
            "--ray", help="Run python graders on a Ray cluster: auto or the head's HOST:PORT ($RFTGRADE_RAY)."
        ),
    ] = None,
    api_key: Annotated[
        Optional[str], typer.Option("--api-key", help="Require this bearer token ($RFTGRADE_API_KEY).")
    ] = None,
    max_body_mb: Annotated[int, typer.Option(help="Largest request body accepted.")] = 64,
    max_inflight_rows: Annotated[
        int, typer.Option(help="Rows graded at once before new requests get 429.")
    ] = 200_000,
    strip_tokens: Annotated[
        Optional[str],
        typer.Option(
            "--strip-tokens",
            help="Comma-separated special tokens to remove from OpenRLHF samples, besides the "
            "common ones (<|im_end|>, <|endoftext|>, </s>, <|eot_id|>, ...).",
        ),
    ] = None,
    reasoning: Annotated[
        Optional[str],
        typer.Option(
            help="OpenRLHF samples: strip (grade the final answer, without a reasoning model's "
            "<think>...</think> before it, as OpenAI's grader saw it) or keep ($RFTGRADE_REASONING; "
            "default strip).",
        ),
    ] = None,
    tool_calls: Annotated[
        Optional[str],
        typer.Option(
            "--tool-calls",
            help="OpenRLHF samples: parse (grade the tool calls written in a completion, "
            "<tool_call>...</tool_call> or gpt-oss's, as sample.output_tools, as OpenAI's grader saw "
            "them) or keep ($RFTGRADE_TOOL_CALLS; default parse).",
        ),
    ] = None,
    request_timeout: Annotated[
        float, typer.Option(help="Seconds a request's python samples may take together (0: no bound).")
    ] = 600.0,
    max_inline_graders: Annotated[
        int, typer.Option(help="Inline graders (graders/run) kept compiled, least recently used out.", min=1)
    ] = 256,
    max_inline_grader_mb: Annotated[
        int, typer.Option(help="The same bound on the inline graders' JSON, in MiB.", min=1)
    ] = 64,
    max_named_graders: Annotated[
        int, typer.Option(help="Names POST /v1/graders registers at most (one more: 400).", min=1)
    ] = 4096,
) -> None:
    """Serve graders over HTTP: OpenAI's graders/run and validate, /v1/grade, OpenRLHF, metrics."""
    from rftgrade._exceptions import BackendUnavailableError, GraderValidationError
    from rftgrade._reasoning import reasoning_mode
    from rftgrade._toolcalls import tool_call_mode
    from rftgrade.cli._io import say_form
    from rftgrade.server import ServerConfig, serve

    try:
        reasoning = reasoning_mode(reasoning)
        tool_calls = tool_call_mode(tool_calls)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    graders: dict[str, str] = {}
    for entry in grader or []:
        name, sep, path = entry.partition("=")
        if not sep or not name or not path:
            typer.echo(f"error: --grader takes NAME=path.json, got {entry!r}", err=True)
            raise typer.Exit(2)
        graders[name] = path
        say_form(Path(path))
    config = ServerConfig(
        graders=graders,
        sandbox=sandbox or os.environ.get("RFTGRADE_SANDBOX", "auto"),
        ray=ray or os.environ.get("RFTGRADE_RAY") or None,
        api_key=api_key or os.environ.get("RFTGRADE_API_KEY"),
        max_body_bytes=max_body_mb * 1024 * 1024,
        max_inflight_rows=max_inflight_rows,
        strip_tokens=tuple(t.strip() for t in (strip_tokens or "").split(",") if t.strip()),
        reasoning=reasoning,
        tool_calls=tool_calls,
        request_timeout=request_timeout or None,
        max_inline_graders=max_inline_graders,
        max_inline_grader_mb=max_inline_grader_mb,
        max_named_graders=max_named_graders,
    )
    if host not in ("127.0.0.1", "localhost", "::1") and not config.api_key:
        typer.echo(
            f"warning: listening on {host} without --api-key: anyone who can reach it can run graders",
            err=True,
        )
    try:
        serve(config, host=host, port=port)
    except (GraderValidationError, BackendUnavailableError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
