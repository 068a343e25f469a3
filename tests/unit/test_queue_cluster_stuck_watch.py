"""How the queue-cluster scenario tells that the nodes the orchestrator restarted are stuck.

A node is stuck once its own log says it gave up: after waiting for its peers' tables, or, when
two nodes boot side by side, with a BOOT FAILED before it ever waited. Either way the cluster
stays down, and the scenario moves on to the runbook instead of watching until its time-out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from faults.broker import BootWatch
from faults.scenarios import gorgias_2021_queue_cluster_down as scenario_module
from faults.scenarios.gorgias_2021_queue_cluster_down import BOOT_FAILED_EARLY, QueueClusterDown

WAITING = "Waiting for Mnesia tables for 2000 ms, 1 retries left"


class _Stack:
    def logs(self, node: str, since: float, tail: int) -> str:
        return "BOOT FAILED"


class _Run:
    """What `_observe_stuck` uses of a run: blocking calls, sleeps, marks and symptoms."""

    def __init__(self) -> None:
        self.stack = _Stack()
        self.marks: list[dict[str, Any]] = []
        self.symptoms: list[str] = []

    async def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    def mark(self, name: str, message: str = "", **data: Any) -> None:
        self.marks.append({"mark": name, **data})

    def symptom(self, message: str, **data: Any) -> None:
        self.symptoms.append(message)


def _watch_with(monkeypatch: pytest.MonkeyPatch, boots: dict[str, list[BootWatch]]) -> _Run:
    def watch_boot(stack: Any, node: str, since: float) -> BootWatch:
        seen = boots[node]
        return seen.pop(0) if len(seen) > 1 else seen[0]

    monkeypatch.setattr(scenario_module, "watch_boot", watch_boot)
    monkeypatch.setattr(scenario_module, "diagnose", lambda stack, node: "not running")
    monkeypatch.setattr(scenario_module, "STUCK_TIMEOUT_S", 0.3)
    run = _Run()
    asyncio.run(QueueClusterDown()._observe_stuck(run, list(boots), since=0.0))  # type: ignore[arg-type]
    return run


def test_a_node_that_waited_for_its_peers_and_gave_up_is_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _watch_with(
        monkeypatch, {"rabbit1": [BootWatch(waiting=WAITING), BootWatch(waiting=WAITING, gave_up=True)]}
    )
    assert [m["node"] for m in run.marks if m["mark"] == "node_gave_up"] == ["rabbit1"]
    assert run.marks[0]["what"].startswith("gave up waiting for its peers' tables")


def test_a_node_whose_boot_failed_before_it_waited_is_stuck_too(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _watch_with(
        monkeypatch,
        {
            "rabbit1": [BootWatch(waiting=WAITING), BootWatch(waiting=WAITING, gave_up=True, exited=True)],
            "rabbit2": [BootWatch(), BootWatch(gave_up=True, exited=True)],
        },
    )
    gave_up = {m["node"]: m["what"] for m in run.marks if m["mark"] == "node_gave_up"}
    assert gave_up == {"rabbit1": "gave up waiting for its peers' tables", "rabbit2": BOOT_FAILED_EARLY}
    assert not any("no stuck state" in s for s in run.symptoms)


def test_a_failure_line_in_a_node_still_running_and_not_waiting_is_not_yet_a_stuck_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = _watch_with(monkeypatch, {"rabbit2": [BootWatch(gave_up=True)]})
    assert not [m for m in run.marks if m["mark"] == "node_gave_up"]
    assert any("no stuck state within" in s for s in run.symptoms)
