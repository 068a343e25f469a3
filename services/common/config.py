"""Service settings: each declared once, here, with its environment name and its role.

Every resilience mechanism is a setting, so a scenario profile can turn it off. A setting is a
field of `Settings` made with `setting(ENV, default, ...)`; everything else derives from that one
declaration: parsing the environment (`Settings.from_env`), the hardened profile the harness runs
with (`hardened_settings`), and the table the README shows (`declared_settings`). A unit test
checks the compose file and the README against it.

Roles: `mitigation` marks a setting whose default is the mitigation an incident lacked (a
vulnerable profile may change it); `runs_in` says who reads it: "services" (the containers, set
through the compose file), "client" (product-owned client code the harness runs: the web app's
live client and its polling), or "monitoring" (the alert rules the team has).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}
WEB_POLL_RETRY_POLICIES = ("budgeted", "immediate")


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def setting(
    env: str,
    default: Any,
    doc: str,
    *,
    mitigation: bool = False,
    runs_in: str = "services",
    choices: tuple[str, ...] = (),
) -> Any:
    """Declare a setting: its environment name, default, meaning and role (a dataclass field)."""
    metadata = {"env": env, "doc": doc, "mitigation": mitigation, "runs_in": runs_in, "choices": choices}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Declared:
    """One declared setting, as the README's table and the harness see it."""

    env: str
    field: str
    default: str  # as the environment spells it
    doc: str
    mitigation: bool
    runs_in: str


def as_env_text(value: Any) -> str:
    """A value as an environment variable spells it: on/off, 0.25, a,b."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse(env_name: str, raw: str, default: Any, choices: tuple[str, ...]) -> Any:
    if isinstance(default, bool):
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise SettingsError(f"{env_name}={raw!r}: expected one of on/off, true/false, yes/no, 1/0")
    if isinstance(default, int | float):
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{env_name}={raw!r}: expected a number") from None
        return int(number) if isinstance(default, int) else number
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if choices and raw not in choices:
        raise SettingsError(f"{env_name}={raw!r}: expected {' or '.join(choices)}")
    return raw


@dataclass(frozen=True)
class Settings:
    redis_url: str = setting("REDIS_URL", "redis://127.0.0.1:6379/0", "where Redis is", runs_in="stack")
    amqp_nodes: tuple[str, ...] = setting("AMQP_NODES", ("127.0.0.1",), "the broker nodes", runs_in="stack")
    amqp_user: str = setting("AMQP_USER", "outage", "broker user", runs_in="stack")
    amqp_password: str = setting("AMQP_PASSWORD", "outage", "broker password", runs_in="stack")
    admin_token: str = setting("ADMIN_TOKEN", "outage-admin-token", "the admin bearer token", runs_in="stack")
    token_secret: str = setting("TOKEN_SECRET", "outage-lab-secret", "signs agents' tokens", runs_in="stack")

    # Resilience switches (hardened defaults).
    outbox: bool = setting(
        "OUTBOX", True, "the api writes events to a Redis outbox; the relay publishes them", mitigation=True
    )
    publisher_confirms: bool = setting(
        "PUBLISHER_CONFIRMS",
        True,
        "the relay marks an event sent once the broker confirms it",
        mitigation=True,
    )
    idempotent_consumer: bool = setting(
        "IDEMPOTENT_CONSUMER", True, "the worker applies each event id's effects once", mitigation=True
    )
    ack_after_work: bool = setting(
        "ACK_AFTER_WORK", True, "the worker acks only after the effects are stored", mitigation=True
    )
    reliable_jobs: bool = setting(
        "RELIABLE_JOBS",
        True,
        "jobs stay pending until done; reclaimed from dead workers",
        mitigation=True,
    )
    live_resume: bool = setting(
        "LIVE_RESUME", True, "live clients resume from their last sequence numbers", mitigation=True
    )
    bulk_isolation: bool = setting(
        "BULK_ISOLATION", True, "bulk events travel in batches on their own bounded queue", mitigation=True
    )

    worker_prefetch: int = setting("WORKER_PREFETCH", 50, "events the worker holds unacked at once")
    job_runners: int = setting("JOB_RUNNERS", 2, "job runner threads per worker")
    live_protocol: int = setting("LIVE_PROTOCOL", 1, "the live server's protocol version")
    live_history: int = setting("LIVE_HISTORY", 1000, "updates kept per channel for resume")
    max_body_bytes: int = setting("MAX_BODY_BYTES", 64 * 1024, "largest request body the api reads")
    live_port: int = setting("LIVE_PORT", 8765, "the live server's port in its container", runs_in="stack")
    live_stale_close: str = setting(
        "LIVE_STALE_CLIENT_CLOSE",
        "reload",
        "what a stale client is told: reload (4002, it stops) or reconnect (1012: the storm)",
        mitigation=True,
        choices=("reload", "reconnect"),
    )
    live_max_handshakes_per_s: float = setting(
        "LIVE_MAX_HANDSHAKES_PER_S",
        200.0,
        "live handshakes admitted per second; 0 = all",
        mitigation=True,
    )
    live_max_connections_per_agent: int = setting(
        "LIVE_MAX_CONNECTIONS_PER_AGENT", 10, "tabs per agent; 0 = unlimited", mitigation=True
    )
    live_heartbeat_s: float = setting("LIVE_HEARTBEAT_S", 10.0, "application ping interval")
    live_heartbeat_timeout_s: float = setting(
        "LIVE_HEARTBEAT_TIMEOUT_S",
        25.0,
        "silence before close 4009; 0 = never",
        mitigation=True,
    )
    live_send_queue: int = setting("LIVE_SEND_QUEUE", 1000, "updates buffered per client before close 1008")
    live_client_reconnect: str = setting(
        "LIVE_CLIENT_RECONNECT",
        "full_jitter",
        "the web app's live client: full_jitter backoff, reset once a snapshot arrived; naive: no "
        "jitter, reset on every handshake",
        mitigation=True,
        runs_in="client",
        choices=("full_jitter", "naive"),
    )
    redis_instrumentation: str = setting(
        "REDIS_INSTRUMENTATION",
        "off",
        "a broken instrumentation deploy: off, raise_all or break_fetch",
        choices=("off", "raise_all", "break_fetch"),
    )
    conversations_query: str = setting(
        "CONVERSATIONS_QUERY",
        "batched",
        "the conversation list: batched (two round trips a page) or per_ticket (the slow release)",
        choices=("batched", "per_ticket"),
    )
    conversations_pagination: bool = setting(
        "CONVERSATIONS_PAGINATION", True, "every query answers one page; off = the whole list at once"
    )
    api_route_concurrency: int = setting(
        "API_ROUTE_CONCURRENCY", 16, "requests one route works on at once; 0 = unlimited", mitigation=True
    )
    api_caller_concurrency: int = setting(
        "API_CALLER_CONCURRENCY",
        4,
        "one caller's requests in flight on a route",
        mitigation=True,
    )
    api_queue_timeout_s: float = setting(
        "API_QUEUE_TIMEOUT_S", 0.25, "wait for a slot this long, then 503 + Retry-After", mitigation=True
    )
    api_request_deadline_s: float = setting(
        "API_REQUEST_DEADLINE_S",
        1.0,
        "work on a request stops after this; 0 = never",
        mitigation=True,
    )
    api_deadline_cooldown_s: float = setting(
        "API_DEADLINE_COOLDOWN_S",
        # A caller whose every read is too big spends at most 1 s (the deadline) in each 6 to 11 s.
        10.0,
        "after a caller's read runs out of its deadline, refuse its reads of that route this long; 0 = never",
        mitigation=True,
    )
    api_drain_s: float = setting(
        "API_DRAIN_S", 2.0, "on SIGTERM, finish in-flight work for up to this; 0 = no drain", mitigation=True
    )
    email_send_ms: float = setting("EMAIL_SEND_MS", 0.0, "how long handing one email to the provider takes")
    publish_retry_s: float = setting(
        "PUBLISH_RETRY_S",
        0.0,
        "direct publishing only: how long a request retries a failed publish before its 503 (it holds the "
        "request, and its gateway slot, that long)",
        mitigation=True,
    )
    web_poll_retry: str = setting(
        "WEB_POLL_RETRY",
        "budgeted",
        "the web app's conversation polling: budgeted retries with jitter after Retry-After, or immediate",
        mitigation=True,
        runs_in="client",
        choices=WEB_POLL_RETRY_POLICIES,
    )
    job_alerts: bool = setting(
        "JOB_ALERTS",
        True,
        "the team's alerts on background jobs (age, runners, completion); off = an uptime check only",
        mitigation=True,
        runs_in="monitoring",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in `environ` (default: the process environment); unset names keep defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for declared in fields(cls):
            meta = declared.metadata
            raw = env.get(meta["env"])
            if raw is not None and raw != "":
                values[declared.name] = _parse(meta["env"], raw, declared.default, meta["choices"])
        return cls(**values)

    def switches(self) -> dict[str, bool]:
        """The resilience switches and their state, for /health and the harness."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "bool"}


def declared_settings() -> list[Declared]:
    """Every declared setting, in declaration order."""
    return [
        Declared(
            f.metadata["env"],
            f.name,
            as_env_text(f.default),
            f.metadata["doc"],
            f.metadata["mitigation"],
            f.metadata["runs_in"],
        )
        for f in fields(Settings)
    ]


def hardened_settings() -> dict[str, str]:
    """The mitigations' hardened values, as the environment spells them: every profile's baseline."""
    return {d.env: d.default for d in declared_settings() if d.mitigation}
