"""Reading a RabbitMQ cluster's restart order from what its nodes wrote when they stopped."""

from __future__ import annotations

from types import SimpleNamespace

from faults.broker import GAVE_UP, WAITING, last_node_to_stop, peers_running_at_shutdown


class _StoppedCluster:
    """Three stopped nodes whose data volumes hold the given nodes_running_at_shutdown files."""

    def __init__(self, files: dict[str, str | None]) -> None:
        self._files = files

    def status(self, *, run_waiting_checks: bool = True) -> SimpleNamespace:
        return SimpleNamespace(services={n: SimpleNamespace(state="exited") for n in self._files})

    def read_volume_file(self, node: str, path: str) -> str | None:
        assert path == f"mnesia/rabbit@{node}/nodes_running_at_shutdown"
        return self._files[node]


def test_the_node_that_saw_no_peer_running_stopped_last():
    cluster = _StoppedCluster(
        {
            "rabbit1": "[rabbit@rabbit1,rabbit@rabbit2,rabbit@rabbit3].\n",
            "rabbit2": "[rabbit@rabbit2,rabbit@rabbit3].\n",
            "rabbit3": "[rabbit@rabbit3].\n",
        }
    )
    assert peers_running_at_shutdown(cluster, "rabbit2") == ["rabbit2", "rabbit3"]
    assert last_node_to_stop(cluster) == "rabbit3"


def test_nodes_killed_together_leave_no_last_node():
    everyone = "[rabbit@rabbit1,rabbit@rabbit2,rabbit@rabbit3].\n"
    cluster = _StoppedCluster({"rabbit1": everyone, "rabbit2": everyone, "rabbit3": None})
    assert peers_running_at_shutdown(cluster, "rabbit3") is None
    assert last_node_to_stop(cluster) is None


def test_the_broker_log_lines_that_tell_the_stuck_state():
    waiting = (
        "2026-11-21 05:20:13.95+00:00 [info] <0.223.0> Waiting for Mnesia tables for 2000 ms, 1 retries left"
    )
    assert WAITING.search(waiting).groups() == ("2000", "1")
    assert GAVE_UP.search("[notice] <0.44.0> Application mnesia exited with reason: stopped")
    assert GAVE_UP.search("BOOT FAILED\n===========\nTimeout contacting cluster nodes")
    assert not GAVE_UP.search("[info] <0.223.0> Running boot step database defined by app rabbit")
