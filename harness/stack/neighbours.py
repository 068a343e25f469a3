"""The other stacks on this machine: frozen while a test that needs the machine whole runs.

With a stack per pytest-xdist worker, a test marked `alone` runs with no other worker's test beside
it, but the other stacks are not idle: three Erlang VMs, four app services polling, and a health
check exec'd into each container every 3 s. Beside one freshly started idle neighbour, the gateway
throttling's hardened run missed its 300 ms promise three runs out of three (ordinary p99 557-1,210
ms in the fix's restart phase, the api's event loop stalled in its socket writes for up to a
second); it held at 46-78 ms in that phase alone, and at 76 ms with the neighbour paused. So a test
marked `alone(neighbours="frozen")` has the other stacks paused: `docker pause` freezes a
container's processes (the cgroup freezer) and keeps every byte of its state, so a neighbour thaws
exactly where it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import docker
from docker.models.containers import Container

PROJECT_LABEL = "com.docker.compose.project"
_WORKER_SUFFIX = re.compile(r"-gw\d+$")  # pytest-xdist's worker ids: gw0, gw1, ...


def worker_siblings(own_project: str) -> list[str]:
    """The compose projects of the other workers' stacks (`<base>-gwN`), running now."""
    base = _WORKER_SUFFIX.sub("", own_project)
    if base == own_project:
        return []
    pattern = re.compile(re.escape(base) + r"-gw\d+$")
    projects = {c.labels.get(PROJECT_LABEL, "") for c in _containers()}
    return sorted(p for p in projects if pattern.match(p) and p != own_project)


@contextmanager
def frozen(projects: list[str]) -> Iterator[list[str]]:
    """Pause every running container of `projects` for the block; unpause them however it ends.
    Yields the names of the containers paused."""
    paused: list[Container] = []
    try:
        for container in _containers(projects, status="running"):
            container.pause()
            paused.append(container)
        yield [c.name for c in paused]
    finally:
        for container in paused:
            container.reload()
            if container.status == "paused":
                container.unpause()


def thaw(project: str) -> list[str]:
    """Unpause every paused container of `project` (a worker killed while it held this stack
    frozen leaves it so); returns their names."""
    thawed = []
    for container in _containers([project], status="paused"):
        container.unpause()
        thawed.append(container.name)
    return thawed


def _containers(projects: list[str] | None = None, status: str | None = None) -> list[Container]:
    client = docker.from_env()
    filters: dict[str, str] = {"label": PROJECT_LABEL}
    if status:
        filters["status"] = status
    found = client.containers.list(all=status is not None, filters=filters, ignore_removed=True)
    return [c for c in found if projects is None or c.labels.get(PROJECT_LABEL) in projects]
