"""``rftgrade sandbox build|doctor``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from rftgrade._exceptions import BackendUnavailableError
from rftgrade.sandbox._select import BACKENDS, backend_class

__all__ = ["sandbox_app"]

sandbox_app = typer.Typer(help="Build and check the sandboxes python graders run in.", no_args_is_help=True)
console = Console()


@sandbox_app.command("doctor")
def doctor(
    ray: Annotated[
        Optional[str],
        typer.Option("--ray", help="Ask every node of this Ray cluster instead (auto or HOST:PORT)."),
    ] = None,
) -> None:
    """Say which sandbox backends can run here, and why not (docker: starts one worker)."""
    if ray:
        _ray_doctor(ray)
        return
    for name in BACKENDS:
        try:
            why = backend_class(name).unavailable_reason()
        except BackendUnavailableError as exc:
            why = str(exc)
        if why is None:
            note = " [yellow](NOT isolated)[/]" if name == "process" else ""
            console.print(f"[green]✓[/] {name}{note}")
            if name == "docker":
                from rftgrade.sandbox.docker import probe_channel

                try:
                    console.print(f"    channel: {probe_channel()}", highlight=False)
                except Exception as exc:  # the engine answered but cannot start a worker
                    console.print(f"    [red]✗[/] a worker did not start: {exc}", highlight=False)
        else:
            console.print(f"[red]✗[/] {name}: {why}", highlight=False)


@sandbox_app.command("build")
def build(
    backend: Annotated[str, typer.Option(help="bwrap, docker or all.")] = "all",
) -> None:
    """Build the sandbox environments (wheels fetched on the host; no network inside)."""
    from rftgrade.sandbox.build import build_bwrap_env

    if backend in ("bwrap", "all"):
        path = build_bwrap_env()
        console.print(f"[green]✓[/] bwrap environment at {path}")
    if backend in ("docker", "all"):
        try:
            from rftgrade.sandbox.docker_build import build_image
        except ImportError:
            console.print("[yellow]docker image build is not available in this version[/]")
        else:
            tag = build_image()
            console.print(f"[green]✓[/] docker image {tag}")


def _ray_doctor(address: str) -> None:
    """One block per live node: its backends, as the pool actor there would find them."""
    from rftgrade.sandbox.ray_doctor import ray_doctor

    try:
        nodes = ray_doctor(address)
    except BackendUnavailableError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if not nodes:
        console.print("[red]✗[/] the cluster has no live node")
        raise typer.Exit(1)
    for node in nodes:
        console.print(
            f"node {node['node_id'][:12]} ({node['address']}, {node['ray_cpus']:g} CPUs)", highlight=False
        )
        if "error" in node:
            console.print(f"  [red]✗[/] did not answer: {node['error']}", highlight=False)
            continue
        for name, why in node["backends"].items():
            if why is None:
                note = " [yellow](NOT isolated)[/]" if name == "process" else ""
                console.print(f"  [green]✓[/] {name}{note}")
            else:
                console.print(f"  [red]✗[/] {name}: {why}", highlight=False)
