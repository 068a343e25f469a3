"""The harness's own blocking HTTP calls to the stack (health checks, /metrics, the brokers'
management API): one client for the whole process, shared by every thread.

A new httpx client builds a TLS context and loads the CA bundle: about 40 ms of CPU, most of it
with the GIL held, even for a plain-HTTP call to a local container. Made per call (`httpx.get`),
the status polls of a broker outage (three management APIs at a time) kept the harness's event
loop from running for up to 1.3 s, and every latency and client time-out it measured with it.
Connections are not kept alive: a restarted container must never be reached through a socket to
its previous process, which is what a fresh client per call guaranteed before.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx

_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=0)
_client: httpx.Client | None = None
_lock = threading.Lock()


def _forget_in_child() -> None:
    """A forked child (the drill's daemon) starts with a client and a lock of its own."""
    global _client, _lock
    _client, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def _shared() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(limits=_LIMITS)
        return _client


def get(url: str, **kwargs: Any) -> httpx.Response:
    """`httpx.get` through the shared client (same keyword arguments: timeout, auth, params...)."""
    return _shared().get(url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    """`httpx.post` through the shared client."""
    return _shared().post(url, **kwargs)
