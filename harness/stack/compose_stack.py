"""The single-host stack: Docker Compose for the lifecycle, the Docker Engine API for everything else.

It only ever touches containers labelled with its own compose project.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import docker
import docker.errors
import httpx
from docker.models.containers import Container

from harness import control_http
from harness.engine.waiting import WaitTimeout, wait_until_sync
from harness.stack import credentials, host_ports, images, nettools
from harness.stack.cgroup_limits import READ_SCRIPT, CgroupReadError, parse_limits
from harness.stack.compose import ComposeError, project_name, run_compose
from harness.stack.protocol import (
    APP_SERVICES,
    BROKER_NODES,
    SERVICES,
    ClusterState,
    Endpoints,
    Limits,
    ServiceState,
    StackStatus,
)

_CONFIGURE_ATTEMPTS = 3
_UP_RETRY_PAUSE_S = 10.0
_PORT_RELEASE_TIMEOUT_S = 120.0
# A status takes most of a second (inspections, health checks, the nodes' cluster views).
_HEALTHY_POLL_S = 0.2


class StackError(RuntimeError):
    """The stack could not be brought to the requested state."""


class ComposeStack:
    def __init__(self, project: str | None = None) -> None:
        self.project = project or project_name()
        self._docker = docker.from_env()
        self._env: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    def up(self, env: Mapping[str, str] | None = None, build: bool = True, timeout: float = 300) -> None:
        credentials.warn_if_legacy(credentials.stack_secrets(self.project), self.project)
        if build or not images.images_present():
            images.build_images()
        self._env = dict(env or {})
        deadline = time.monotonic() + timeout
        while True:
            try:
                run_compose(["up", "-d", "--no-build"], env={**self.host_ports(), **self._env})
                break
            except ComposeError:
                # A dependency's health check can fail while it boots on a busy machine (compose v1
                # gives up at once); it turns healthy later, and `up` again starts the rest.
                if time.monotonic() + _UP_RETRY_PAUSE_S > deadline:
                    raise
                time.sleep(_UP_RETRY_PAUSE_S)
        self.wait_healthy(max(1.0, deadline - time.monotonic()))

    def down(self, volumes: bool = False) -> None:
        run_compose(["down", "--remove-orphans", *(["--volumes"] if volumes else [])])
        if volumes:  # the broker's login lived in its volumes: the next stack gets new secrets
            credentials.forget_secrets(self.project)

    @property
    def settings(self) -> dict[str, str]:
        """The settings this object last started or configured the app services with."""
        return dict(self._env)

    def configure(self, env: Mapping[str, str], services: Sequence[str] = APP_SERVICES) -> None:
        """Run the app services with these settings (compose recreates only what changed).

        A recreated service keeps the host port it had, so clients that hold an endpoint (the load,
        the probes) reach it again after a deploy or restart."""
        self._env = dict(env)
        ports = self.host_ports()
        pinned = {**ports, **self._env}
        own_ports = [
            int(ports[v]) for v, (service, _) in host_ports.PORT_VARIABLES.items() if service in services
        ]
        for attempt in range(_CONFIGURE_ATTEMPTS):
            try:
                run_compose(["up", "-d", "--no-build", "--no-deps", *services], env=pinned)
                return
            except ComposeError:
                # Docker's port proxy of the replaced container holds the pinned port until it has
                # closed every connection it proxied (thousands of tabs take a while): wait until
                # the port is free, then `up` again finishes the job.
                if attempt == _CONFIGURE_ATTEMPTS - 1:
                    raise
                wait_until_sync(
                    lambda: all(map(host_ports.port_free, own_ports)),
                    timeout=_PORT_RELEASE_TIMEOUT_S,
                    what=f"host ports {own_ports} released by the replaced containers",
                    interval=0.5,
                )

    def host_ports(self) -> dict[str, str]:
        """The compose variables that pin every published port: the ports the containers have,
        and new ones outside the ephemeral range for services not created yet (host_ports.py)."""
        containers = self._containers()
        kept = {}
        for variable, (service, container_port) in host_ports.PORT_VARIABLES.items():
            container = containers.get(service)
            if container is None:
                continue
            key = f"{container_port}/tcp"
            # Pinned when created; else (a stack from before pinning) the port it runs on now.
            for bindings in (
                (container.attrs.get("HostConfig", {}).get("PortBindings") or {}).get(key),
                (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(key),
            ):
                if bindings and bindings[0].get("HostPort"):
                    kept[variable] = bindings[0]["HostPort"]
                    break
        return host_ports.choose_ports(kept)

    # -- state -----------------------------------------------------------------------------------

    def _containers(self) -> dict[str, Container]:
        # A container compose removes between the listing and its inspection is skipped, not an error.
        found = self._docker.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}, ignore_removed=True
        )
        chosen: dict[str, Container] = {}
        # While compose recreates a service, its old and new containers exist side by side:
        # the running one wins, else the newest.
        for container in sorted(
            found, key=lambda c: (c.attrs["State"].get("Running", False), c.attrs["Created"])
        ):
            service = container.labels.get("com.docker.compose.service")
            if service in SERVICES:
                chosen[service] = container
        return chosen

    def container(self, service: str) -> Container:
        if service not in SERVICES:
            raise StackError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
        try:
            return self._containers()[service]
        except KeyError:
            raise StackError(f"service {service} has no container in project {self.project}") from None

    @property
    def network(self) -> str:
        return f"{self.project}_default"

    def status(self, *, run_waiting_checks: bool = True) -> StackStatus:
        """The stack as Docker and the broker nodes report it now.

        Docker runs a container's health check only every interval (10 s for the app services),
        so a service that has just come back reads "starting" or "unhealthy" there for up to that
        long. With ``run_waiting_checks`` such a running container's own check runs now and its
        answer counts. Loops that only read states (a fault waiting for a node) pass False: each
        check is a process started in the container, and they would start one per poll."""
        containers = self._containers()
        passed: dict[str, bool] = {}
        waiting = [
            name
            for name, container in containers.items()
            if run_waiting_checks
            and _docker_health(container) in ("starting", "unhealthy")
            and container.attrs.get("State", {}).get("Running")
        ]
        if waiting:
            # Each check is a process started in its container: run them side by side.
            with ThreadPoolExecutor(len(waiting)) as pool:
                verdicts = pool.map(lambda name: _passes_its_health_check(containers[name]), waiting)
                passed = dict(zip(waiting, verdicts, strict=True))
        services = {}
        for name in SERVICES:
            container = containers.get(name)
            if container is None:
                services[name] = ServiceState(name, "missing", "none")
                continue
            state = container.attrs.get("State", {})
            health = "healthy" if passed.get(name) else _docker_health(container)
            networks = tuple(container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {})
            status = state.get("Status", "unknown")
            services[name] = ServiceState(
                name,
                status,
                health,
                networks,
                exit_code=state.get("ExitCode") if status == "exited" else None,
                started_at=_docker_time(state.get("StartedAt", "")),
            )
        try:
            endpoints: Endpoints | None = self._endpoints_from(containers)
        except StackError:
            endpoints = None
        return StackStatus(self.project, services, self._cluster_state(endpoints), endpoints)

    def _cluster_state(self, endpoints: Endpoints | None) -> ClusterState:
        running: dict[str, list[str]] = {}
        alarms: dict[str, list[str]] = {}
        if endpoints is None:
            return ClusterState(running, alarms)

        def nodes_seen_by(url: str) -> list[dict] | None:
            try:
                reply = control_http.get(f"{url}/api/nodes", auth=credentials.broker_login(), timeout=3)
                reply.raise_for_status()
            except httpx.HTTPError:
                return None
            return reply.json()

        # Each node's own view (a partition shows as two views): asked side by side.
        with ThreadPoolExecutor(len(endpoints.management) or 1) as pool:
            views = dict(
                zip(endpoints.management, pool.map(nodes_seen_by, endpoints.management.values()), strict=True)
            )
        for node, nodes in views.items():
            if nodes is None:
                continue
            running[node] = [n["name"] for n in nodes if n.get("running")]
            me = next((n for n in nodes if n["name"] == f"rabbit@{node}"), {})
            alarms[node] = [a for a in ("mem_alarm", "disk_free_alarm") if me.get(a)]
        return ClusterState(running, alarms)

    def endpoints(self) -> Endpoints:
        return self._endpoints_from(self._containers())

    def _endpoints_from(self, containers: Mapping[str, Container]) -> Endpoints:
        def port(service: str, container_port: int) -> str | None:
            container = containers.get(service)
            if container is None:
                return None
            bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
                f"{container_port}/tcp"
            )
            return bindings[0]["HostPort"] if bindings else None

        api, live, redis = port("gateway", 8000), port("gateway", 8765), port("redis", 6379)
        if not (api and live and redis):
            raise StackError("the gateway and redis containers are not running with published ports")
        amqp = {n: f"amqp://127.0.0.1:{p}" for n in BROKER_NODES if (p := port(n, 5672))}
        management = {n: f"http://127.0.0.1:{p}" for n in BROKER_NODES if (p := port(n, 15672))}
        metrics = {s: f"http://127.0.0.1:{p}" for s in ("relay", "worker") if (p := port(s, 9100))}
        return Endpoints(
            api=f"http://127.0.0.1:{api}",
            live=f"ws://127.0.0.1:{live}",
            redis=f"redis://127.0.0.1:{redis}/0",
            amqp=amqp,
            management=management,
            metrics=metrics,
        )

    def wait_healthy(self, timeout: float = 180) -> StackStatus:
        try:
            return wait_until_sync(
                lambda: (status := self.status()).healthy and _gateway_routes(status.endpoints) and status,
                timeout=timeout,
                what="a healthy stack",
                interval=_HEALTHY_POLL_S,
            )
        except WaitTimeout:
            status = self.status(run_waiting_checks=False)
            problems = "; ".join(status.problems()) or "the gateway routes to no api or live server yet"
            raise StackError(f"stack not healthy after {timeout:.0f} s: {problems}") from None

    # -- levers for faults -------------------------------------------------------------------------

    def kill(self, service: str, signal: str = "SIGKILL") -> None:
        self.container(service).kill(signal=signal)

    def stop(self, service: str, timeout: float = 10) -> None:
        self.container(service).stop(timeout=int(timeout))

    def start(self, service: str) -> None:
        self.container(service).start()

    def restart(self, service: str) -> None:
        self.container(service).restart(timeout=10)

    def pause(self, service: str) -> None:
        self.container(service).pause()

    def unpause(self, service: str) -> None:
        self.container(service).unpause()

    def disconnect(self, service: str) -> None:
        self._docker.networks.get(self.network).disconnect(self.container(service), force=True)

    def connect(self, service: str) -> None:
        """Reconnect with the aliases compose gave it, so peers resolve the service name again."""
        container = self.container(service)
        container.reload()
        if self.network in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}):
            return
        self._docker.networks.get(self.network).connect(container, aliases=[service])

    def is_connected(self, service: str) -> bool:
        container = self.container(service)
        return self.network in (container.attrs.get("NetworkSettings", {}).get("Networks") or {})

    def exec(self, service: str, command: Sequence[str], timeout: float = 30) -> tuple[int, str]:
        container = self.container(service)
        try:
            result = subprocess.run(
                ["docker", "exec", container.id, *command], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {timeout:.0f} s"
        return result.returncode, result.stdout + result.stderr

    def logs(self, service: str, since: float | None = None, tail: int = 200) -> str:
        kwargs: dict[str, object] = {"tail": tail}
        if since is not None:
            kwargs["since"] = int(since)
        return self.container(service).logs(**kwargs).decode(errors="replace")

    # -- levers on the wire and on the host ------------------------------------------------------

    def _own_container(self, service: str) -> Container:
        """The service's running container, checked to belong to this project (faults never
        touch anything else)."""
        container = self.container(service)
        container.reload()
        if container.labels.get("com.docker.compose.project") != self.project:
            raise StackError(f"container {container.name} is not part of project {self.project}")
        if container.status != "running":
            raise StackError(f"service {service} is {container.status}, not running")
        return container

    def address(self, service: str) -> str:
        container = self._own_container(service)
        network = (container.attrs.get("NetworkSettings", {}).get("Networks") or {}).get(self.network)
        if not network or not network.get("IPAddress"):
            raise StackError(f"service {service} has no address on {self.network} (cut off?)")
        return str(network["IPAddress"])

    def _helper_labels(self) -> dict[str, str]:
        return {"com.docker.compose.project": self.project, "io.outage-lab.role": "tool"}

    def run_in_netns(self, service: str | None, script: str, timeout: float = 30) -> tuple[int, str]:
        mode = "none" if service is None else f"container:{self._own_container(service).id}"
        return nettools.run_helper(self._docker, mode, script, self._helper_labels(), timeout)

    def start_in_netns(self, service: str, script: str) -> Container:
        """Start a helper in the service's network namespace and leave it running (a probe's
        server side); the caller removes it."""
        mode = f"container:{self._own_container(service).id}"
        return nettools.start_helper(self._docker, mode, script, self._helper_labels())

    def limits(self, service: str) -> Limits:
        self._own_container(service)
        code, output = self.exec(service, ["sh", "-c", READ_SCRIPT])
        if code != 0:
            raise StackError(f"cannot read the cgroup limits of {service}: {output[-300:]}")
        try:
            return parse_limits(output)
        except CgroupReadError as exc:
            raise StackError(f"{service}: {exc}") from None

    def set_limits(self, service: str, limits: Limits) -> None:
        """Change the limits at run time through the Docker API (the container keeps running)."""
        self._own_container(service).update(
            cpu_period=limits.cpu_period_us,
            cpu_quota=limits.cpu_quota_us,
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_swap_bytes,
        )

    def write_volume_file(self, service: str, path: str, content: str) -> None:
        """Write a file into a stopped service's volume, with a throwaway container of its image."""
        container = self.container(service)
        mounts = container.attrs.get("Mounts") or []
        if not mounts:
            raise StackError(f"{service} has no volume")
        volume, target = mounts[0]["Name"], mounts[0]["Destination"]
        self._docker.containers.run(
            container.image.id,
            entrypoint=["sh", "-c", f"printf '%s' \"$0\" > {target}/{path}", content],
            volumes={volume: {"bind": target, "mode": "rw"}},
            remove=True,
            labels={"com.docker.compose.project": self.project, "io.outage-lab.role": "tool"},
        )

    def read_volume_file(self, service: str, path: str) -> str | None:
        """Read a file from a stopped service's volume (None when it does not exist)."""
        container = self.container(service)
        mounts = container.attrs.get("Mounts") or []
        if not mounts:
            raise StackError(f"{service} has no volume")
        volume, target = mounts[0]["Name"], mounts[0]["Destination"]
        output = self._docker.containers.run(
            container.image.id,
            entrypoint=["sh", "-c", f"cat {target}/{path} 2>/dev/null || printf '\\001missing'"],
            volumes={volume: {"bind": target, "mode": "ro"}},
            remove=True,
            labels={"com.docker.compose.project": self.project, "io.outage-lab.role": "tool"},
        ).decode(errors="replace")
        return None if output == "\x01missing" else output


def _gateway_routes(endpoints: Endpoints | None) -> bool:
    """The gateway passes requests on to the api and the live server.

    A recreated service has a new address, which the gateway learns from Docker's DNS and its own
    checks a moment after the service itself is healthy; until then it answers 503."""
    if endpoints is None:
        return False
    live = endpoints.live.replace("ws://", "http://", 1)
    try:
        return all(
            control_http.get(f"{url}/health", timeout=2).status_code == 200 for url in (endpoints.api, live)
        )
    except httpx.HTTPError:
        return False


def _docker_health(container: Container) -> str:
    return (container.attrs.get("State", {}).get("Health") or {}).get("Status", "none")


def _passes_its_health_check(container: Container) -> bool:
    """Run the container's own Docker health check now.

    Docker runs a container's first check one interval (10 s for the app services) after it
    starts, and every profile switch recreates the app services; after failures it waits as long
    for the next. Running the same check at once gives Docker's answer to its next check as soon
    as the service answers: one pass turns a starting or unhealthy container healthy there too."""
    test = (container.attrs.get("Config", {}).get("Healthcheck") or {}).get("Test") or []
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return False
    command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    try:
        return container.exec_run(command).exit_code == 0
    except docker.errors.APIError:  # the container stopped meanwhile
        return False


def _docker_time(text: str) -> float | None:
    """Docker's RFC 3339 time with nanoseconds, as unix time (None when unset)."""
    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None
