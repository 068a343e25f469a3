"""Container starts, stops and restarts, read from Docker's event stream into the drill's timeline.

Responders may act with raw tools (`docker restart`, `docker compose start`); the harness sees
those from Docker itself. Only containers of the drill's own compose project are followed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import docker

CONTAINER_ACTIONS = ("start", "stop", "die", "kill", "restart", "pause", "unpause")


class DockerEventWatch:
    def __init__(self, project: str, on_event: Callable[[str, str], None]) -> None:
        self._client = docker.from_env()
        self._stream = self._client.events(
            decode=True,
            filters={
                "type": "container",
                "label": f"com.docker.compose.project={project}",
                "event": list(CONTAINER_ACTIONS),
            },
        )
        self._on_event = on_event
        self._thread = threading.Thread(target=self._follow, name="docker-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._stream:
                attributes = event.get("Actor", {}).get("Attributes", {})
                service = attributes.get("com.docker.compose.service")
                if not service:
                    continue  # a helper container of the harness's own (reading a volume), no service
                action = event.get("Action") or event.get("status", "?")
                if action == "die" and attributes.get("exitCode"):
                    action = f"exited with code {attributes['exitCode']}"
                self._on_event(service, action)
        except Exception:  # the stream closes when the drill ends; nothing more to record
            return

    def close(self) -> None:
        self._stream.close()
        self._client.close()
