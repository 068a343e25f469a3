"""A recovery's per-node Docker calls (stop, exec, write a file) run side by side, not one by one."""

from __future__ import annotations

import threading

import pytest

from faults.broker import on_every_node
from harness.stack.protocol import BROKER_NODES


def test_the_three_nodes_are_handled_at_the_same_time():
    # Each call waits until all three have started: run one after another, the first would time out.
    together = threading.Barrier(len(BROKER_NODES), timeout=5)
    handled: list[str] = []

    def stop(node: str) -> None:
        together.wait()
        handled.append(node)

    on_every_node(stop)
    assert sorted(handled) == sorted(BROKER_NODES)


def test_a_failure_on_one_node_is_raised_once_the_others_are_done():
    handled: list[str] = []

    def stop(node: str) -> None:
        if node == "rabbit2":
            raise RuntimeError("rabbit2: no such container")
        handled.append(node)

    with pytest.raises(RuntimeError, match="rabbit2"):
        on_every_node(stop)
    assert sorted(handled) == ["rabbit1", "rabbit3"]


def test_no_nodes_no_calls():
    on_every_node(lambda node: pytest.fail(f"called for {node}"), [])
