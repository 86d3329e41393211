"""A job's ``response_format`` as the regex vLLM samples under (``rftgrade export config --trainer trl``).

OpenAI sampled an RFT job's model under its ``response_format``: every sample was JSON
of the job's schema, and graders read ``sample.output_json`` knowing it parses. Of the
open trainers, TRL alone can constrain its sampling, through vLLM's structured outputs,
and it takes a regex (``vllm_structured_outputs_regex``, honoured with ``use_vllm:
true``). outlines-core (the library vLLM's outlines backend is built on) writes the
schema as that regex: properties in the schema's order, as OpenAI's strict mode emits
them, one optional space between tokens. What it cannot carry (a schema-less
``json_object``, a construct the library does not know) is said, never dropped silently.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["StructuredOutputUnavailable", "schema_regex"]


class StructuredOutputUnavailable(Exception):
    """The response format cannot be written as a regex; the message says why and what to do."""


def schema_regex(response_format: Any) -> str:
    """The regex of ``response_format`` (``{"type": "json_schema", "json_schema": {"schema": ...}}``).

    Raises:
        StructuredOutputUnavailable: not a JSON schema format, outlines-core missing
            (``pip install 'rftgrade[structured]'``), or a schema it cannot express.
    """
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind != "json_schema":
        raise StructuredOutputUnavailable(
            f"response_format of type {kind!r} has no JSON schema to constrain sampling to "
            "(only json_schema can be carried)"
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise StructuredOutputUnavailable("response_format.json_schema.schema is missing or not an object")
    try:
        from outlines_core.json_schema import build_regex_from_schema
    except ImportError:
        raise StructuredOutputUnavailable(
            "outlines-core is not installed, so the schema could not be written as vLLM's regex "
            "(pip install 'rftgrade[structured]' and run the command again)"
        ) from None
    try:
        return str(build_regex_from_schema(json.dumps(schema)))
    except Exception as exc:  # the library's own error types differ by version
        raise StructuredOutputUnavailable(
            f"outlines-core cannot write this schema as a regex: {exc}"
        ) from None
