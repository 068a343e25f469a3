"""The stack's host ports are chosen outside the kernel's ephemeral range, because a client socket
holding a port as its local end keeps any listener off it, and are kept for the stack's life."""

from __future__ import annotations

import random
import socket

from harness.stack.host_ports import PORT_VARIABLES, choose_ports, ephemeral_range, port_free


def _listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


def test_a_port_someone_listens_on_is_not_free_and_is_free_once_closed():
    listener = _listener()
    port = listener.getsockname()[1]

    assert not port_free(port)
    listener.close()
    assert port_free(port)


def test_a_client_socket_keeps_a_listener_off_its_local_port_so_ephemeral_host_ports_can_be_lost():
    server = _listener()
    with socket.create_connection(server.getsockname()) as client:
        local_port = client.getsockname()[1]
        low, high = ephemeral_range()
        assert low <= local_port <= high
        assert not port_free(local_port), "a redeployed service could not bind this port now"
    server.close()


def test_every_published_port_is_chosen_free_distinct_and_outside_the_ephemeral_range():
    low, high = ephemeral_range()
    chosen = choose_ports({}, random.Random(7))

    assert set(chosen) == set(PORT_VARIABLES)
    ports = [int(port) for port in chosen.values()]
    assert len(set(ports)) == len(ports)
    assert all(not low <= port <= high for port in ports)
    assert all(port_free(port) for port in ports)


class _PicksFirst(random.Random):
    """A generator whose first picks are given: the ports a chooser would try first."""

    def __init__(self, *picks: int) -> None:
        super().__init__(1)
        self.picks = list(picks)

    def choice(self, seq):  # type: ignore[no-untyped-def, override]
        return self.picks.pop(0) if self.picks and isinstance(seq, range) else super().choice(seq)


def test_the_ports_a_stack_has_are_kept_and_a_taken_or_already_chosen_port_is_tried_no_further():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken = next(port for port in range(20_000, 30_000) if port_free(port))
    listener.bind(("127.0.0.1", taken))
    listener.listen()

    chosen = choose_ports({"OUTAGE_LIVE_PORT": "23456"}, _PicksFirst(taken, 23456, taken))

    assert chosen["OUTAGE_LIVE_PORT"] == "23456"
    assert str(taken) not in chosen.values()
    assert list(chosen.values()).count("23456") == 1
    listener.close()
