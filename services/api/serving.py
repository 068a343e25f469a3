"""The api's HTTP server: uvicorn, with a drain before it stops.

Plain uvicorn stops listening on SIGTERM and waits, without a bound, for the requests it holds:
clients see connections refused while a pile of old work finishes (or is killed by Docker).
Draining instead keeps listening for up to `drain_s`, answering new work 503 with Retry-After
(and /ready 503) until the requests in flight are done; then the server stops, giving the rest
at most the request deadline.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

import uvicorn

from services.api.admission import Admission


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, admission: Admission, drain_s: float) -> None:
        super().__init__(config)
        self._admission = admission
        self._drain_s = drain_s
        self._drain_started: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain_s > 0 and self._drain_started is None:
            # A signal handler: only flags here; the main loop's tick ends the drain.
            self._drain_started = time.monotonic()
            self._admission.draining = True
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_started is not None and not self.should_exit:
            drained = self._admission.in_flight == 0
            if drained or time.monotonic() - self._drain_started >= self._drain_s:
                self.should_exit = True
        return await super().on_tick(counter)
