"""Every Redis key the services use, in one place."""

from __future__ import annotations

TICKET_IDS = "tickets:next_id"  # INCR counter for ticket ids
TICKETS_ALL = "tickets:all"  # sorted set: ticket id by creation time
OUTBOX = "outbox"  # stream of events waiting for the relay
OUTBOX_SENT = "outbox:sent"  # counter of events the broker confirmed
OUTBOX_CURSOR = "outbox:cursor"  # id of the last outbox entry the relay handed to the broker
OUTBOX_DEFERRED = "outbox:deferred"  # stream of bulk events the full bulk queue refused, retried later
OUTBOX_BULK = "outbox:bulk"  # stream of bulk events (bulk isolation): the relay's lower-priority lane
EFFECTS = "effects"  # stream of every effect the worker produced (what the harness observes)
FAILPOINTS = "failpoints"  # hash: failpoint name -> JSON value
VIEW_COUNTS = "views:counts"  # hash: view name -> count of open tickets
AVAILABILITY = "agents:availability"  # hash: agent -> status
JOBS_EMAIL = "jobs:email"  # background email deliveries (stream with a consumer group, or a list)
JOBS_IMPORT = "jobs:import"  # background email imports
WORKER_HEARTBEATS = "workers:heartbeats"  # hash: worker id (and "<id>/jobs-<n>" runners) -> unix time
JOBS_GROUP = "workers"  # consumer group of the job streams (reliable jobs)
JOBS_COMPLETED = "jobs:completed"  # hash: job kind -> jobs that had their effect (dashboards' counter)


def ticket(ticket_id: int | str) -> str:
    return f"ticket:{ticket_id}"


def ticket_messages(ticket_id: int | str) -> str:
    """Hash message id -> JSON of every message stored for the ticket (written by the api)."""
    return f"ticket:{ticket_id}:messages"


def ticket_message_order(ticket_id: int | str) -> str:
    """List of message ids in arrival order."""
    return f"ticket:{ticket_id}:order"


def ticket_thread(ticket_id: int | str) -> str:
    """List of message ids the worker has processed into the conversation thread."""
    return f"ticket:{ticket_id}:thread"


def view_tickets(view: str) -> str:
    """Set of ticket ids in a view."""
    return f"view:{view}:tickets"


def agent_conversations(agent: str) -> str:
    """Sorted set of ticket ids assigned to an agent, by last activity."""
    return f"agent:{agent}:conversations"


COOLDOWNS = "api:cooldowns"


def cooldowns(deployment: str) -> str:
    """Prefix of one deployment's cooldown markers."""
    return f"{COOLDOWNS}:{deployment}:"


def cooldown(deployment: str, route: str, caller: str) -> str:
    """Marker, expiring with it, that a caller's reads of a route are refused for now (admission)."""
    return f"{cooldowns(deployment)}{caller}:{route}"


def ticket_presence(ticket_id: int | str) -> str:
    """Hash agent -> unix time: who has the ticket open (collision detection)."""
    return f"ticket:{ticket_id}:presence"


def processed_event(event_id: str) -> str:
    """Marker that an event's effects were applied (the idempotent consumer's memory)."""
    return f"processed:{event_id}"


def job_done(job_id: str) -> str:
    """Marker that a background job's effect happened (a redelivered job never sends twice)."""
    return f"job:{job_id}:done"


LIVE_BLOCKED_AGENTS = "live:blocked_agents"  # set: agents whose outdated builds an operator blocked


def live_stream(channel: str) -> str:
    """Bounded stream of live updates; entry ids are `<seq>-0`."""
    return f"live:{channel}"


def live_sequence(channel: str) -> str:
    return f"live:{channel}:seq"
