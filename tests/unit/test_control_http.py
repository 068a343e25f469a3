"""The harness's blocking calls to the stack share one HTTP client and keep no connection open.

One client, because building one costs tens of milliseconds of CPU with the GIL held (a TLS
context and the CA bundle), which the harness's event loop then waits for; no kept connection,
because a container restarted between two polls must be asked through a new socket.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import control_http


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive allowed on the server's side
    peers: list[int] = []  # shared by the handler instances on purpose
    lock = threading.Lock()

    def do_GET(self) -> None:  # http.server calls it by this name
        with self.lock:
            self.peers.append(self.client_address[1])
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_every_thread_gets_the_same_client():
    with ThreadPoolExecutor(4) as pool:
        clients = set(map(id, pool.map(lambda _: control_http._shared(), range(8))))
    assert len(clients) == 1


def test_each_call_opens_its_own_connection():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        assert [control_http.get(url, timeout=5).text for _ in range(3)] == ["ok"] * 3
    finally:
        server.shutdown()
        server.server_close()
    assert len(set(_Counting.peers)) == 3, "three calls, three client ports: nothing was kept alive"
