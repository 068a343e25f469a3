"""What every route needs (settings, store, publisher, failpoints), held on the app's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.api.admission import Admission
from services.api.failpoint_reader import FailpointReader
from services.api.metrics import ApiMetrics
from services.api.publishing import DirectPublisher
from services.api.store import TicketStore
from services.common import keys
from services.common.config import Settings
from services.common.events import Event


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
            await self.store.spool_events(events, stream=keys.OUTBOX_BULK if bulk_lane else keys.OUTBOX)
        else:
            await self.publisher.publish(events)
        self.metrics.count_events(events, via="outbox" if self.publisher is None else "broker")


def context_of(request: Request) -> ApiContext:
    return request.app.state.context


Context = Annotated[ApiContext, Depends(context_of)]
