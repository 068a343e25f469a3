"""The drill's board and control API: one HTTP server on 127.0.0.1, in the daemon's threads.

GET  /                 the live board (board.html)
GET  /events           server-sent events: status every second, monitoring points, visible timeline
GET  /api/status       the public status (JSON)
POST /api/ack | /api/hint | /api/note {"text"} | /api/action {"name","args","outcome","ok"} | /api/stop

Nothing served names the scenario or the fault: only the briefing, alerts, the responders' own
entries, container events and what monitoring plots.
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from harness.drill.engine import DrillInputError, DrillSession
from harness.observe.monitoring import SERIES
from harness.record.report_html import charts_js, plotly_js

MAX_BODY_BYTES = 64 * 1024
SSE_INTERVAL_S = 1.0


class BoardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, session: DrillSession, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.session = session
        self.closing = threading.Event()
        self.assets = {
            "/static/plotly.min.js": plotly_js().encode(),
            "/static/charts.js": charts_js().encode(),
        }
        self.page = (resources.files("harness.drill") / "board.html").read_text(encoding="utf-8").encode()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="drill-board", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: BoardServer

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the daemon's log is for the drill, not for every poll

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, content: dict[str, Any]) -> None:
        self._send(status, json.dumps(content).encode(), "application/json")

    def do_GET(self) -> None:
        session = self.server.session
        if self.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif self.path in self.server.assets:
            self._send(HTTPStatus.OK, self.server.assets[self.path], "text/javascript; charset=utf-8")
        elif self.path == "/api/status":
            self._json(HTTPStatus.OK, session.public_status())
        elif self.path == "/api/labels":
            self._json(HTTPStatus.OK, {key: list(value) for key, value in SERIES.items()})
        elif self.path == "/events":
            self._stream()
        elif self.path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not_found", "detail": f"no route {self.path}"})

    def do_POST(self) -> None:
        session = self.server.session
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "too_large", "detail": "body over 64 KiB"}
            )
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except json.JSONDecodeError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "malformed_json", "detail": "the body is not JSON"})
            return
        if session.finished.is_set() and self.path != "/api/stop":
            self._json(HTTPStatus.CONFLICT, {"error": "drill_over", "detail": "the drill has ended"})
            return
        try:
            if self.path == "/api/ack":
                self._json(HTTPStatus.OK, session.acknowledge(str(body.get("who") or "responder")))
            elif self.path == "/api/hint":
                self._json(HTTPStatus.OK, session.hint())
            elif self.path == "/api/note":
                self._json(
                    HTTPStatus.OK,
                    session.note(str(body.get("text") or ""), str(body.get("who") or "responder")),
                )
            elif self.path == "/api/action":
                args = [str(a) for a in body.get("args") or []]
                self._json(
                    HTTPStatus.OK,
                    session.operator_action(
                        str(body.get("name")), args, str(body.get("outcome")), bool(body.get("ok"))
                    ),
                )
            elif self.path == "/api/stop":
                session.request_stop()
                self._json(HTTPStatus.ACCEPTED, {"stopping": True})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not_found", "detail": f"no route {self.path}"})
        except DrillInputError as exc:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": "refused", "detail": str(exc)})

    def _stream(self) -> None:
        """Server-sent events until the client goes away or the server closes."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        session = self.server.session
        sent_points = sent_events = 0
        try:
            while not self.server.closing.is_set():
                points = session.monitoring[sent_points:]
                sent_points += len(points)
                events = session.visible_events()[sent_events:]
                sent_events += len(events)
                chunk = _sse("status", session.public_status())
                if points:
                    chunk += _sse("points", points)
                for event in events:
                    chunk += _sse("entry", event)
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(SSE_INTERVAL_S)
        except (BrokenPipeError, ConnectionResetError):
            return


def _sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
