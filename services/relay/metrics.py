"""Prometheus metrics of the relay."""

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_LENGTH = Gauge("relay_outbox_length", "Entries in the outbox stream (XLEN), i.e. not yet sent")
DEFERRED_LENGTH = Gauge(
    "relay_outbox_deferred_length", "Bulk events refused by the full bulk queue, to retry"
)
BULK_LANE_LENGTH = Gauge("relay_outbox_bulk_length", "Bulk events waiting in the bulk lane (bulk isolation)")
BACKLOG_AGE = Gauge("relay_backlog_age_seconds", "Age of the oldest unsent outbox entry")
PUBLISHED = Counter("relay_published_total", "Events handed to the broker (confirmed when confirms are on)")
CONFIRM_LATENCY = Histogram(
    "relay_confirm_latency_seconds",
    "Time from basic.publish to the broker's confirm",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONNECTS = Counter("relay_reconnects_total", "Connections opened to the cluster (the first one included)")
PUBLISH_ERRORS = Counter("relay_publish_errors_total", "Publishes the broker did not take", ["reason"])
PAUSED = Gauge("relay_paused", "1 while the relay.pause failpoint holds publishing")
