"""Short-lived helper containers that join a service's network namespace.

This is how Pumba and Chaos Mesh reach a container's network: a helper started with
`network_mode: container:<id>` and NET_ADMIN sees the target's interfaces, routes and netfilter
tables, applies iptables rules or tc queueing disciplines there, and exits; the rules stay with
the namespace. It works wherever the Docker API does (Docker Desktop too, where the host cannot
enter the namespace), and the target's own image needs no network tools.
"""

from __future__ import annotations

import docker
import docker.errors
from docker.models.containers import Container

from harness.stack.images import tool_image

NETTOOLS = "outage-lab/nettools"


def start_helper(
    client: docker.DockerClient, network_mode: str, script: str, labels: dict[str, str]
) -> Container:
    """Start a helper running `script` (sh) in the given network mode; the caller removes it."""
    try:
        return client.containers.run(
            tool_image(NETTOOLS),
            ["sh", "-c", script],
            network_mode=network_mode,
            cap_add=["NET_ADMIN"],
            labels=labels,
            detach=True,
        )
    except docker.errors.ImageNotFound:
        raise RuntimeError(f"{tool_image(NETTOOLS)} is missing: run `outage build`") from None


def run_helper(
    client: docker.DockerClient, network_mode: str, script: str, labels: dict[str, str], timeout: float
) -> tuple[int, str]:
    """Run `script` in a helper to its end: its exit code and output (124 when it timed out)."""
    helper = start_helper(client, network_mode, script, labels)
    try:
        try:
            code = int(helper.wait(timeout=timeout)["StatusCode"])
        except Exception:  # the wait timed out (the client raises its transport's own error)
            helper.kill()
            code = 124
        return code, helper.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        helper.remove(force=True)
