"""Applying an event's effects: one Lua script per event, so they happen all together or not at all.

With the idempotent consumer on, the script first sets the event's processed marker with SET NX;
when the marker exists the event was applied before and the script changes nothing. With it off,
a redelivered event is applied again (and the effects log shows the duplicate).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import redis

from services.common import effects, keys, live_feed
from services.common.config import Settings
from services.common.events import MESSAGE_CREATED, TICKET_BULK_UPDATED, Event, EventError
from services.worker.jobs import Job, delivery_job

log = logging.getLogger(__name__)

PROCESSED_MARKER_TTL_S = 7 * 24 * 3600
DEFAULT_VIEW = "inbox"
BOT_REPLY_TEXT = "Thanks for writing in! An agent will get back to you shortly."
# What each bulk action of the api sets on a ticket.
_ACTION_STATUS = {"close": "closed", "reopen": "open"}

# KEYS: marker, thread, effects, view counts, email jobs
# ARGV: guard, ttl, message id, processed effect, bot effect or "", view or "", view effect,
#       job mode ("stream" | "list"), job (flat fields JSON | JSON string)
_MESSAGE_CREATED = """
if ARGV[1] == '1' and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return {0, -1} end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('XADD', KEYS[3], '*', unpack(cjson.decode(ARGV[4])))
if ARGV[8] == 'stream' then
  redis.call('XADD', KEYS[5], '*', unpack(cjson.decode(ARGV[9])))
else
  redis.call('LPUSH', KEYS[5], ARGV[9])
end
if ARGV[5] ~= '' then redis.call('XADD', KEYS[3], '*', unpack(cjson.decode(ARGV[5]))) end
local count = -1
if ARGV[6] ~= '' then
  count = redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
  local fields = cjson.decode(ARGV[7])
  table.insert(fields, 'count')
  table.insert(fields, tostring(count))
  redis.call('XADD', KEYS[3], '*', unpack(fields))
end
return {1, count}
"""

# KEYS: marker, ticket hash, effects.  ARGV: guard, ttl, ticket fields to set (flat JSON), bulk effect
_BULK_UPDATED = """
if ARGV[1] == '1' and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return {0, -1} end
redis.call('HSET', KEYS[2], unpack(cjson.decode(ARGV[3])))
redis.call('XADD', KEYS[3], '*', unpack(cjson.decode(ARGV[4])))
return {1, -1}
"""


@dataclass(frozen=True)
class ScriptCall:
    source: str
    keys: list[str]
    args: list[str]


@dataclass(frozen=True)
class Outcome:
    applied: bool  # False: a duplicate the idempotent consumer skipped
    view: str | None = None
    view_count: int | None = None


def _flat(fields: dict[str, str]) -> str:
    return json.dumps([item for pair in fields.items() for item in pair])


def view_of(event: Event) -> str:
    return str(event.data.get("view") or DEFAULT_VIEW)


def bulk_changes(event: Event) -> dict[str, str]:
    """The ticket fields a bulk event sets: close/reopen set the status, tag sets the tag."""
    action = str(event.data.get("action", ""))
    if event.data.get("status"):
        return {"status": str(event.data["status"])}
    if action in _ACTION_STATUS:
        return {"status": _ACTION_STATUS[action]}
    if action == "tag" and event.data.get("tag"):
        return {"tag": str(event.data["tag"])}
    raise EventError(f"bulk event {event.event_id}: action {action!r} is not one the worker knows")


def script_call(event: Event, settings: Settings, job: Job | None = None) -> ScriptCall:
    """The script and its arguments for one event (pure: no Redis involved)."""
    guard = "1" if settings.idempotent_consumer else "0"
    marker = keys.processed_event(event.event_id)
    if event.type == TICKET_BULK_UPDATED:
        changes = bulk_changes(event)
        action = str(event.data.get("action", "set"))
        effect = effects.effect_fields(
            effects.BULK_APPLIED, event.event_id, event.ticket_id, action=action, **changes
        )
        return ScriptCall(
            _BULK_UPDATED,
            [marker, keys.ticket(event.ticket_id), keys.EFFECTS],
            [guard, str(PROCESSED_MARKER_TTL_S), _flat(changes), _flat(effect)],
        )
    if event.type != MESSAGE_CREATED or not event.message_id:
        raise EventError(
            f"event {event.event_id} of type {event.type!r} cannot be applied (message_id missing?)"
        )
    job = job or delivery_job(event)
    ids = (event.event_id, event.ticket_id, event.message_id)
    processed = effects.effect_fields(effects.PROCESSED, *ids)
    bot = (
        _flat(effects.effect_fields(effects.BOT_REPLY, *ids, reply=BOT_REPLY_TEXT))
        if event.data.get("bot")
        else ""
    )
    view = view_of(event)
    view_effect = effects.effect_fields(effects.VIEW_COUNT_UPDATED, *ids, view=view)
    job_mode, job_body = (
        ("stream", _flat(job.to_fields())) if settings.reliable_jobs else ("list", job.to_json())
    )
    return ScriptCall(
        _MESSAGE_CREATED,
        [marker, keys.ticket_thread(event.ticket_id), keys.EFFECTS, keys.VIEW_COUNTS, keys.JOBS_EMAIL],
        [
            guard,
            str(PROCESSED_MARKER_TTL_S),
            event.message_id,
            _flat(processed),
            bot,
            view,
            _flat(view_effect),
            job_mode,
            job_body,
        ],
    )


class EffectApplier:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._scripts = {
            source: client.register_script(source) for source in (_MESSAGE_CREATED, _BULK_UPDATED)
        }

    def apply(self, event: Event) -> Outcome:
        """Apply the event's effects atomically; raises EventError for an event that cannot apply."""
        return self.apply_batch([event])[0]

    def check(self, event: Event) -> None:
        """Raises EventError when the event could never be applied (so it is not worth a retry)."""
        script_call(event, self._settings)

    def apply_batch(self, events: list[Event]) -> list[Outcome]:
        """Apply each event's effects atomically, all in one round trip, in order.

        Each event is still its own script (all of its effects or none); the pipeline only saves
        the round trips, which is what bounds a worker draining a flood of bulk events."""
        calls = [script_call(event, self._settings) for event in events]
        with self._client.pipeline(transaction=False) as pipe:
            for call in calls:
                self._scripts[call.source](keys=call.keys, args=call.args, client=pipe)
            results = pipe.execute()
        outcomes = []
        for event, (applied, count) in zip(events, results, strict=True):
            if not applied:
                outcomes.append(Outcome(applied=False))
            elif event.type != MESSAGE_CREATED:
                outcomes.append(Outcome(applied=True))
            else:
                view = view_of(event)
                self._publish_view(event, view, int(count))
                outcomes.append(Outcome(applied=True, view=view, view_count=int(count)))
        return outcomes

    def _publish_view(self, event: Event, view: str, count: int) -> None:
        # After the transaction: a lost live update is repaired by the next one, a failed
        # effect is not, so a live-feed hiccup never sends the event back for redelivery.
        payload = {"view": view, "count": count, "ticket_id": event.ticket_id, "message_id": event.message_id}
        try:
            live_feed.publish(self._client, "views", payload, history=self._settings.live_history)
        except redis.RedisError as exc:
            log.warning("live update for view %s not published: %s", view, exc)
