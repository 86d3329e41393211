"""``rftgrade serve``: the reward server (FastAPI + uvicorn) over the library API."""

from __future__ import annotations

from rftgrade._gc import set_gc_pausing
from rftgrade.server.app import ServerConfig, create_app, dedupe_rows, openrlhf_rows

__all__ = ["ServerConfig", "create_app", "dedupe_rows", "openrlhf_rows", "serve"]


def serve(
    config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Run the server until SIGINT/SIGTERM; in-flight requests finish before it exits."""
    import gc

    import uvicorn

    from rftgrade.server._protocol import uvicorn_options

    app = create_app(config)
    # Everything alive now (imports, preloaded graders) lives as long as the server:
    # keep it out of the walk of every later garbage collection. The server owns its
    # process, so this is its call to make (a library embedding create_app is not).
    gc.collect()
    gc.freeze()
    set_gc_pausing(True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=60,
        limit_concurrency=None,
        access_log=False,
        **uvicorn_options(),
    )
