"""A tiny status server for the background services: `/health` (JSON) and `/metrics` (Prometheus).

It runs in a daemon thread, so it keeps answering while the service's main loop is stuck or
backing off; `/health` reports "alive" and lets `details` describe how the service is doing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.config import Settings

log = logging.getLogger(__name__)

DEFAULT_PORT = 9100


def health_body(service: str, settings: Settings, details: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The `/health` document; a failing `details` callback is reported, never raised."""
    try:
        info = details()
    except Exception as exc:  # the status page must answer even when the service is unwell
        info = {"error": f"details unavailable: {exc}"}
    return {"status": "alive", "service": service, "switches": settings.switches(), "details": info}


def start_status_server(
    service: str,
    settings: Settings,
    details: Callable[[], dict[str, Any]],
    host: str = "0.0.0.0",
    port: int = DEFAULT_PORT,
) -> ThreadingHTTPServer:
    """Serve `/health` and `/metrics` on host:port from a daemon thread; returns the server."""

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                body = json.dumps(health_body(service, settings, details), default=str).encode()
                self._answer(200, "application/json", body)
            elif path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._answer(404, "application/json", b'{"detail":"not found; try /health or /metrics"}')

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # health probes every 3 s: keep logs quiet
            pass

    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"{service}-status", daemon=True)
    thread.start()
    log.info("status server for %s on %s:%d", service, host, server.server_address[1])
    return server
