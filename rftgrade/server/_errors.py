"""The reward server's HTTP errors, in OpenAI's shape.

Every refusal is ``{"error": {"message", "type", "param", "code"}}``, as OpenAI's
API answers: the OpenAI client raises its usual exceptions from it, and a person
reads from ``message`` what is wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from rftgrade._exceptions import GraderValidationError
from rftgrade._json import dumps

__all__ = ["bad_body", "error", "fast_json", "problems_error"]

_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An OpenAI-shaped error answer with ``status``."""
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": _KINDS.get(status, "server_error"),
                "param": param,
                "code": code,
            }
        },
        status_code=status,
        headers=headers,
    )


def problems_error(exc: GraderValidationError) -> JSONResponse:
    """The 400 for an invalid grader: every problem in the message, the first one's path as ``param``."""
    first = exc.problems[0]
    message = "; ".join(str(p) for p in exc.problems)
    return error(
        400,
        f"invalid grader: {message}",
        param=f"grader.{first.path}" if first.path else "grader",
        code="invalid_grader",
    )


async def bad_body(request: Request, exc: RequestValidationError) -> Response:
    """A body FastAPI could not read as the route's model: a 400 naming the field (not FastAPI's 422)."""
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid body"}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if first.get("type") == "json_invalid":
        return error(400, f"the body is not valid JSON: {first.get('msg')}", code="invalid_json")
    return error(400, f"{loc or 'body'}: {first.get('msg')}", param=loc or None, code="invalid_body")


def fast_json(payload: Any) -> Response:
    """``payload`` encoded with orjson (``JSONResponse`` uses the standard library's encoder)."""
    return Response(dumps(payload), media_type="application/json")
