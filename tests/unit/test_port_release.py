"""A redeploy waits for its own pinned host port: free once nobody listens on it, taken while someone does."""

from __future__ import annotations

import socket

from harness.stack.compose_stack import _port_free


def test_a_port_someone_listens_on_is_not_free_and_is_free_once_closed():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    assert not _port_free(port)
    listener.close()
    assert _port_free(port)
