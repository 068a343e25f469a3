"""What every route needs (settings, store, publisher, failpoints), held on the app's state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.api.admission import Admission
from services.api.errors import ApiError
from services.api.failpoint_reader import FailpointReader
from services.api.metrics import ApiMetrics
from services.api.publishing import DirectPublisher
from services.api.store import TicketStore
from services.common import keys
from services.common.config import Settings
from services.common.events import Event

# Backpressure on bulk actions: past this many events waiting in the bulk lane, a bulk action
# waits for the relay to take some, so a huge action trickles in at the broker's pace instead of
# taking the api's event loop, Redis and the relay all at once.
BULK_LANE_HIGH_WATER = 5_000
BULK_LANE_POLL_S = 0.05
BULK_LANE_STALL_S = 30.0  # no progress for this long: the relay is not draining; stop waiting


@dataclass
class ApiContext:
    settings: Settings
    store: TicketStore
    failpoints: FailpointReader
    metrics: ApiMetrics
    publisher: DirectPublisher | None  # only when the outbox is off
    admission: Admission = field(default_factory=Admission)  # default: admits everything

    async def emit(self, events: list[Event]) -> None:
        """Send events on: into the outbox (the relay publishes them), or straight to the broker."""
        if self.publisher is None:
            # With bulk isolation a bulk action's events wait in their own outbox lane, so the relay
            # never queues ordinary messages behind them.
            bulk_lane = self.settings.bulk_isolation and any(event.is_bulk for event in events)
            waiting = await self.store.spool_events(
                events, stream=keys.OUTBOX_BULK if bulk_lane else keys.OUTBOX
            )
            if bulk_lane and waiting > BULK_LANE_HIGH_WATER:
                await self._wait_for_bulk_lane()
        else:
            await self.publisher.publish(events)
        self.metrics.count_events(events, via="outbox" if self.publisher is None else "broker")

    async def _wait_for_bulk_lane(self) -> None:
        lowest, progress_at = None, time.monotonic()
        while (waiting := await self.store.outbox_length(keys.OUTBOX_BULK)) > BULK_LANE_HIGH_WATER:
            if lowest is None or waiting < lowest:
                lowest, progress_at = waiting, time.monotonic()
            elif time.monotonic() - progress_at > BULK_LANE_STALL_S:
                raise ApiError(
                    503,
                    "bulk_lane_stalled",
                    f"{waiting} bulk events have waited {BULK_LANE_STALL_S:.0f} s for the relay; those "
                    "already queued will be applied, run the action again for the rest",
                    headers={"Retry-After": "30"},
                )
            await asyncio.sleep(BULK_LANE_POLL_S)


def context_of(request: Request) -> ApiContext:
    return request.app.state.context


async def _context(request: Request) -> ApiContext:
    # A coroutine: FastAPI runs a plain function dependency in a worker thread, two thread hops a
    # request for a dictionary lookup.
    return context_of(request)


Context = Annotated[ApiContext, Depends(_context)]
