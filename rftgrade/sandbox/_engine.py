"""The Docker Engine API calls of a sandbox container's life: create, start, inspect,
remove and list, through one small interface with two transports.

Where the engine listens on a unix socket of this host (the default, and the only
case where the worker's direct channel works), the calls go over that socket with
the standard library's :mod:`http.client`: ``import docker`` (requests, urllib3)
costs ~85 ms here, a third of starting a container, and ``rftgrade grade`` would pay
it before its first worker could start. These five calls are the Engine API's
stable, versioned endpoints (``/v1.41``, Docker 20.10 and later); nothing else is
spoken here. Every other engine (``DOCKER_HOST=tcp://``, TLS, ssh) goes through the
docker SDK's low-level client, which also keeps images, exec and attach.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any, Protocol
from urllib.parse import quote

__all__ = ["ContainerRef", "Engine", "EngineError", "LocalEngine", "SdkEngine", "local_socket"]

API = "/v1.41"
_DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineError(Exception):
    """The engine answered a call with an error (``status`` is its HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (engine status {status})")
        self.status = status
        self.message = message


class Engine(Protocol):
    """What the docker backend asks of an engine."""

    def create(self, config: dict[str, Any], name: str) -> str: ...
    def start(self, container: str) -> None: ...
    def inspect(self, container: str) -> dict[str, Any]: ...
    def remove(self, container: str) -> None: ...
    def containers(self, label: str) -> list[dict[str, Any]]: ...


def local_socket() -> str | None:
    """The engine's unix socket on this host, as the docker SDK's ``from_env`` finds
    it (``DOCKER_HOST``, else the default path); ``None`` for any other engine."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return _DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host[len("unix://") :] or _DEFAULT_SOCKET
    return None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class LocalEngine:
    """The engine at a unix socket of this host, over :mod:`http.client`.

    One connection per call: calls come from several threads at once, and a unix
    socket connects in microseconds.
    """

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        connection = _UnixConnection(self.path, self.timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, API + url, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            try:
                message = json.loads(data).get("message", "")
            except ValueError:
                message = data.decode("utf-8", "replace")
            raise EngineError(response.status, message or response.reason)
        return json.loads(data) if data else None

    def create(self, config: dict[str, Any], name: str) -> str:
        return str(self._call("POST", f"/containers/create?name={quote(name)}", config)["Id"])

    def start(self, container: str) -> None:
        self._call("POST", f"/containers/{container}/start")

    def inspect(self, container: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/containers/{container}/json"))

    def remove(self, container: str) -> None:
        self._call("DELETE", f"/containers/{container}?force=1")

    def containers(self, label: str) -> list[dict[str, Any]]:
        filters = quote(json.dumps({"label": [label]}))
        return list(self._call("GET", f"/containers/json?all=1&filters={filters}"))

    def ping(self) -> None:
        connection = _UnixConnection(self.path, self.timeout)
        try:
            connection.request("GET", "/_ping")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise EngineError(response.status, "the engine does not answer its ping")

    def has_image(self, image: str) -> bool:
        try:
            self._call("GET", f"/images/{quote(image, safe='')}/json")
        except EngineError as exc:
            if exc.status == 404:
                return False
            raise
        return True


class SdkEngine:
    """Any engine the docker SDK reaches (remote, TLS, ssh), through its low-level client."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import docker.errors

        try:
            return getattr(self.api, method)(*args, **kwargs)
        except docker.errors.APIError as exc:
            raise EngineError(exc.status_code or 500, str(exc.explanation or exc)) from exc

    def create(self, config: dict[str, Any], name: str) -> str:
        return str(self._call("create_container_from_config", config, name=name)["Id"])

    def start(self, container: str) -> None:
        self._call("start", container)

    def inspect(self, container: str) -> dict[str, Any]:
        return dict(self._call("inspect_container", container))

    def remove(self, container: str) -> None:
        self._call("remove_container", container, force=True)

    def containers(self, label: str) -> list[dict[str, Any]]:
        return list(self._call("containers", all=True, filters={"label": label}))


class ContainerRef:
    """One container, as the channels and the backend use it (its id, its last
    inspection, its removal), whichever engine transport made it."""

    def __init__(self, engine: Engine, container_id: str) -> None:
        self.engine = engine
        self.id = container_id
        self.attrs: dict[str, Any] = {}

    def reload(self) -> None:
        self.attrs = self.engine.inspect(self.id)

    @property
    def status(self) -> str:
        return str(self.attrs.get("State", {}).get("Status", ""))

    def remove(self) -> None:
        """Kill (if running) and remove."""
        self.engine.remove(self.id)
