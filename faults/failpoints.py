"""Application faults: failpoints set through the api's admin endpoint, and bad deploys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from faults.base import Fault
from harness.stack.credentials import admin_token
from harness.stack.protocol import Stack


def _admin(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.endpoints().api, headers={"Authorization": f"Bearer {admin_token()}"}, timeout=10
    )


def clear_all_failpoints(stack: Stack) -> list[str]:
    """Delete every failpoint that is set; returns their names."""
    with _admin(stack) as client:
        current = client.get("/admin/failpoints")
        current.raise_for_status()
        names = list(current.json().get("failpoints", {}))
        for name in names:
            client.delete(f"/admin/failpoints/{name}").raise_for_status()
    return names


@dataclass
class Failpoint(Fault):
    """Switch on a named failpoint in the services (see services/common/failpoints.py)."""

    kind = "failpoint"
    name: str
    value: Any = True

    def inject(self, stack: Stack) -> None:
        with _admin(stack) as client:
            client.put(f"/admin/failpoints/{self.name}", json={"value": self.value}).raise_for_status()

    def revert(self, stack: Stack) -> None:
        with _admin(stack) as client:
            reply = client.delete(f"/admin/failpoints/{self.name}")
            if reply.status_code != 404:
                reply.raise_for_status()


@dataclass
class Deploy(Fault):
    """Restart services with other settings (a release); reverting redeploys the settings before it."""

    kind = "deploy"
    services: list[str]
    settings: dict[str, str]
    previous: dict[str, str] = field(default_factory=dict)

    def inject(self, stack: Stack) -> None:
        stack.configure({**self.previous, **self.settings}, self.services)

    def revert(self, stack: Stack) -> None:
        stack.configure(self.previous, self.services)
