"""``rftgrade serve``: the reward server (FastAPI + uvicorn) over the library API."""

from __future__ import annotations

from rftgrade.server.app import ServerConfig, create_app, openrlhf_rows

__all__ = ["ServerConfig", "create_app", "openrlhf_rows", "serve"]


def serve(
    config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Run the server until SIGINT/SIGTERM; in-flight requests finish before it exits."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=60,
        limit_concurrency=None,
        access_log=False,
    )
