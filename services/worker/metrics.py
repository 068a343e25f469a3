"""Prometheus metrics of the worker (event consumer and job runners)."""

from prometheus_client import Counter, Gauge

EVENTS = Counter("worker_events_total", "Events consumed, by type and outcome", ["type", "outcome"])
MALFORMED = Counter("worker_events_malformed_total", "Deliveries that were not a valid event (rejected)")
EVENT_ERRORS = Counter(
    "worker_event_errors_total", "Events whose effects failed (requeued when acking after work)"
)
BROKER_CONNECTED = Gauge("worker_broker_connected", "1 while the worker holds a connection to the cluster")
BROKER_RECONNECTS = Counter("worker_broker_reconnects_total", "Connections opened to the cluster")
HEARTBEAT = Gauge("worker_heartbeat_timestamp_seconds", "Unix time of the worker's last heartbeat")

JOBS_PENDING = Gauge("worker_jobs_pending", "Background jobs not done yet (XLEN or LLEN)", ["kind"])
JOBS_OLDEST_AGE = Gauge("worker_jobs_oldest_age_seconds", "Age of the oldest job not done yet", ["kind"])
JOBS_DONE = Counter("worker_jobs_done_total", "Background jobs finished", ["kind"])
JOB_ERRORS = Counter(
    "worker_job_errors_total", "Job failures: by job kind, or fetch (taking jobs) or malformed", ["kind"]
)
JOBS_RECLAIMED = Counter("worker_jobs_reclaimed_total", "Jobs taken over from idle consumers", ["kind"])
RUNNER_HEARTBEAT = Gauge(
    "worker_job_runner_heartbeat_timestamp_seconds",
    "Unix time a job runner last completed a loop",
    ["runner"],
)
