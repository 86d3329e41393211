"""Model routing: which backend serves a grader's ``model`` name.

Read from a TOML file (``$RFTGRADE_MODELS``, else ``./rftgrade-models.toml``)::

    [defaults]                      # optional: applies to every model
    timeout = 60

    [models."gpt-4o*"]              # glob patterns; the first match wins
    backend = "openai"              # any OpenAI-compatible server: OpenAI, vLLM, SGLang, Ollama, llama.cpp
    base_url = "http://127.0.0.1:8000/v1"   # or a list: one model on several servers, balanced
    api_key_env = "VLLM_API_KEY"    # the key is read from the environment, never from the file
    concurrency = 32
    structured_output = true        # send a strict JSON-schema response_format

    [models.local-judge]
    backend = "local"               # a transformers model loaded in-process (CUDA when present)
    path = "/models/Qwen2.5-0.5B-Instruct"
    mode = "expected"               # generate | expected (probability-weighted) | reward_model

With no file at all, every model goes to the OpenAI-compatible endpoint named by
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``, as the ``openai`` client does.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["ModelRoute", "RoutingConfig", "load_routing"]


@dataclass(frozen=True)
class ModelRoute:
    """How to reach one model."""

    pattern: str
    backend: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    base_urls: tuple[str, ...] = ()
    """Several servers of one model (``base_url = [..]`` in the file): the scorer balances
    on outstanding requests and fails over between them; ``concurrency`` is per server."""
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 16
    timeout: float = 60.0
    max_retries: int = 4
    structured_output: bool = True
    served_name: str | None = None
    """Send this model name instead of the grader's (e.g. a vLLM served-model-name)."""
    path: str | None = None
    mode: Literal["generate", "expected", "reward_model"] = "generate"
    device: str | None = None
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_new_tokens: int = 256
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env)


@dataclass
class RoutingConfig:
    """Ordered routes; :meth:`route` returns the first whose pattern matches."""

    routes: list[ModelRoute]
    source: str

    def route(self, model: str) -> ModelRoute | None:
        for route in self.routes:
            if fnmatch.fnmatchcase(model, route.pattern):
                return route
        return None


_FIELDS = set(ModelRoute.__dataclass_fields__) - {"pattern", "extra"}


def load_routing(path: str | Path | None = None) -> RoutingConfig:
    """Load routing from ``path``, ``$RFTGRADE_MODELS`` or ``./rftgrade-models.toml``.

    Raises:
        ValueError: the file has an unknown key or a bad value (names the model and key).
    """
    candidate = Path(path or os.environ.get("RFTGRADE_MODELS") or "rftgrade-models.toml")
    if not candidate.is_file():
        if path is not None or os.environ.get("RFTGRADE_MODELS"):
            raise ValueError(f"no model routing file at {candidate}")
        base_url = os.environ.get("OPENAI_BASE_URL")
        routes = [ModelRoute("*", base_url=base_url)] if base_url or os.environ.get("OPENAI_API_KEY") else []
        return RoutingConfig(routes, "environment (OPENAI_BASE_URL / OPENAI_API_KEY)")
    data = tomllib.loads(candidate.read_text())
    defaults = data.get("defaults", {})
    routes = []
    for pattern, entry in (data.get("models") or {}).items():
        merged = {**defaults, **entry}
        unknown = set(merged) - _FIELDS
        if unknown:
            raise ValueError(
                f"{candidate}: models.{pattern}: unknown key(s) {sorted(unknown)}; known: {sorted(_FIELDS)}"
            )
        if merged.get("backend", "openai") not in ("openai", "local"):
            raise ValueError(f"{candidate}: models.{pattern}.backend must be 'openai' or 'local'")
        urls = merged.get("base_url")
        if isinstance(urls, list):
            if not urls or not all(isinstance(u, str) and u for u in urls):
                raise ValueError(f"{candidate}: models.{pattern}.base_url must be a URL or a list of URLs")
            merged["base_url"], merged["base_urls"] = urls[0], tuple(urls)
        elif "base_urls" in merged:
            merged["base_urls"] = tuple(merged["base_urls"])
        routes.append(ModelRoute(pattern=pattern, **merged))
    return RoutingConfig(routes, str(candidate))
