"""Every Redis read and write the api makes.

The client must be a `redis.asyncio.Redis` created with `decode_responses=True`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from services.common import failpoints, keys, live_feed
from services.common.events import MESSAGE_CREATED, Event

CHUNK = 1000  # commands per pipeline for bulk paths

# Store one message, exactly once per message id, and (with the outbox) its event, atomically:
# a retry carrying the same idempotency key finds the message and writes nothing, and a message
# is never stored without its event nor an event spooled without its message.
# KEYS: ticket hash, messages hash, order list, outbox stream, assignee's conversations.
# ARGV: message id, message JSON, encoded event ('' = no outbox), now, ticket id, '1' if assigned.
_STORE_MESSAGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', ''} end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return {'exists', existing} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[1])
if ARGV[3] ~= '' then redis.call('XADD', KEYS[4], '*', 'event', ARGV[3]) end
if ARGV[6] == '1' then redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5]) end
return {'stored', ''}
"""


# Append many events to the outbox in one command: one round trip, all or nothing.
# KEYS: outbox stream. ARGV: encoded events.
_SPOOL_EVENTS = """
for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', 'event', ARGV[i]) end
return redis.call('XLEN', KEYS[1])
"""

# Create a range of seeded tickets server-side (a load-test fixture; far faster than one
# command per ticket from Python). KEYS: view set, all-tickets zset, assignee's conversations.
# ARGV: first id, last id, view, assignee ('' = none), now, ticket key prefix (keys.ticket('')).
_SEED_TICKETS = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
for id = first, last do
  redis.call('HSET', ARGV[6] .. id, 'id', id, 'subject', 'Seeded ticket ' .. id,
    'customer', 'seed+' .. id .. '@example.com', 'view', ARGV[3], 'bot', '0',
    'assignee', ARGV[4], 'status', 'open', 'created_at', ARGV[5])
  redis.call('SADD', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[5], id)
  if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], id) end
end
return last - first + 1
"""


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    event_id: str
    event: Event | None  # None when this was a replay: nothing new was written


@dataclass(frozen=True)
class ConversationRow:
    ticket_id: int
    last_activity: float


class TicketStore:
    def __init__(self, client: Redis, live_history: int = 1000) -> None:
        self._client = client
        self._live_history = live_history
        self._scripts: dict[str, Any] = {}  # registered on first use: building the store touches nothing

    # Health.

    async def ping(self) -> None:
        await self._client.ping()

    async def outbox_length(self, stream: str = keys.OUTBOX) -> int:
        return int(await self._client.xlen(stream))

    # Admission cooldowns: kept in Redis so a restarted api still holds callers to them.

    async def save_cooldown(self, deployment: str, route: str, caller: str, seconds: float) -> None:
        key = keys.cooldown(deployment, route, caller)
        await self._client.set(key, route, px=max(1, int(seconds * 1000)))

    async def cooldowns(self, deployment: str) -> dict[tuple[str, str], float]:
        """(route, caller) -> seconds left, for every cooldown of this deployment still running."""
        prefix = keys.cooldowns(deployment)
        found_keys = [key async for key in self._client.scan_iter(f"{prefix}*", count=1000)]
        async with self._client.pipeline(transaction=False) as pipe:
            for key in found_keys:
                pipe.get(key)
                pipe.pttl(key)
            replies = await pipe.execute()
        found = {}
        for key, route, left_ms in zip(found_keys, replies[::2], replies[1::2], strict=True):
            if route is not None and left_ms > 0:
                found[(route, key[len(prefix) : -len(route) - 1])] = left_ms / 1000
        return found

    # Tickets.

    async def create_ticket(
        self, subject: str, customer: str, view: str, bot: bool, assignee: str | None
    ) -> tuple[dict[str, Any], int]:
        """Returns the ticket and the view's new count."""
        ticket_id = int(await self._client.incr(keys.TICKET_IDS))
        now = time.time()
        fields = _ticket_fields(ticket_id, subject, customer, view, bot, assignee, now)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ticket(ticket_id), mapping=fields)
            pipe.sadd(keys.view_tickets(view), ticket_id)
            pipe.zadd(keys.TICKETS_ALL, {str(ticket_id): now})
            if assignee:
                pipe.zadd(keys.agent_conversations(assignee), {str(ticket_id): now})
            pipe.hincrby(keys.VIEW_COUNTS, view, 1)
            results = await pipe.execute()
        return _ticket_from_hash(ticket_id, fields), int(results[-1])

    async def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        raw = await self._client.hgetall(keys.ticket(ticket_id))
        return _ticket_from_hash(ticket_id, raw) if raw else None

    async def ticket_with_messages(self, ticket_id: int) -> dict[str, Any] | None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.ticket(ticket_id))
            pipe.hgetall(keys.ticket_messages(ticket_id))
            pipe.lrange(keys.ticket_message_order(ticket_id), 0, -1)
            pipe.lrange(keys.ticket_thread(ticket_id), 0, -1)
            raw_ticket, raw_messages, order, thread = await pipe.execute()
        if not raw_ticket:
            return None
        processed = set(thread)
        messages = []
        for message_id in order:
            raw = raw_messages.get(message_id)
            if raw is None:
                continue
            message = json.loads(raw)
            messages.append(
                {
                    "id": message["id"],
                    "body": message["body"],
                    "author": message["author"],
                    "received_at": message["received_at"],
                    "processed": message_id in processed,
                }
            )
        return {**_ticket_from_hash(ticket_id, raw_ticket), "messages": messages}

    async def assign(self, ticket_id: int, agent: str) -> bool:
        """False when the ticket does not exist."""
        previous = await self._client.hmget(keys.ticket(ticket_id), ["id", "assignee"])
        if previous[0] is None:
            return False
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ticket(ticket_id), "assignee", agent)
            if previous[1] and previous[1] != agent:
                pipe.zrem(keys.agent_conversations(previous[1]), str(ticket_id))
            pipe.zadd(keys.agent_conversations(agent), {str(ticket_id): time.time()})
            await pipe.execute()
        return True

    async def ticket_exists(self, ticket_id: int) -> bool:
        return bool(await self._client.exists(keys.ticket(ticket_id)))

    # Messages.

    async def add_message(
        self, ticket_id: int, body: str, author: str, client_key: str | None, spool_event: bool
    ) -> StoredMessage | None:
        """Store a message once per id; None when the ticket does not exist."""
        head = await self._client.hmget(keys.ticket(ticket_id), ["id", "view", "bot", "assignee"])
        if head[0] is None:
            return None
        _, view, bot, assignee = head
        # The id is fixed before the write, so even a retried call cannot store the message twice.
        message_id = client_key or uuid.uuid4().hex
        event = Event(
            type=MESSAGE_CREATED,
            ticket_id=ticket_id,
            message_id=message_id,
            data={"author": author, "bot": bot == "1", "view": view},
        )
        now = time.time()
        message = {
            "id": message_id,
            "ticket_id": ticket_id,
            "body": body,
            "author": author,
            "received_at": now,
            "event_id": event.event_id,
        }
        conversations = keys.agent_conversations(assignee) if assignee else keys.ticket(ticket_id)
        outcome, existing = await self._script(_STORE_MESSAGE)(
            keys=[
                keys.ticket(ticket_id),
                keys.ticket_messages(ticket_id),
                keys.ticket_message_order(ticket_id),
                keys.OUTBOX,
                conversations,
            ],
            args=[
                message_id,
                json.dumps(message, separators=(",", ":")),
                event.encode().decode() if spool_event else "",
                now,
                ticket_id,
                "1" if assignee else "0",
            ],
        )
        if outcome == "missing":
            return None
        if outcome == "exists":
            earlier = json.loads(existing)
            return StoredMessage(message_id, str(earlier.get("event_id", "")), None)
        return StoredMessage(message_id, event.event_id, event)

    # Views.

    async def view_count(self, view: str) -> int:
        return int(await self._client.hget(keys.VIEW_COUNTS, view) or 0)

    async def view_ticket_chunks(self, view: str, size: int = CHUNK) -> AsyncIterator[list[int]]:
        """Every ticket id of a view once, in chunks of at most `size` (SSCAN, never one huge read)."""
        seen: set[int] = set()  # SSCAN may return an element twice while the set rehashes
        chunk: list[int] = []
        cursor = 0
        while True:
            cursor, members = await self._client.sscan(keys.view_tickets(view), cursor, count=size)
            for member in members:
                ticket_id = int(member)
                if ticket_id in seen:
                    continue
                seen.add(ticket_id)
                chunk.append(ticket_id)
                if len(chunk) == size:
                    yield chunk
                    chunk = []
            if int(cursor) == 0:
                break
        if chunk:
            yield chunk

    async def spool_events(self, events: Sequence[Event], stream: str = keys.OUTBOX) -> int:
        """Append events to an outbox stream in one atomic command, so a chunk lands whole or not at
        all; returns how many entries the stream holds after it."""
        if not events:
            return await self.outbox_length(stream)
        spool = self._script(_SPOOL_EVENTS)
        return int(await spool(keys=[stream], args=[event.encode() for event in events]))

    async def seed_view(self, view: str, count: int, assignee: str | None) -> int:
        """Create `count` tickets in a view (load-test fixture); returns the view's new count."""
        last_id = int(await self._client.incrby(keys.TICKET_IDS, count))
        now = f"{time.time():.6f}"
        conversations = keys.agent_conversations(assignee) if assignee else keys.view_tickets(view)
        seed = self._script(_SEED_TICKETS)
        # Chunks keep each script short, so Redis keeps serving other clients in between.
        for first in range(last_id - count + 1, last_id + 1, CHUNK):
            last = min(first + CHUNK - 1, last_id)
            await seed(
                keys=[keys.view_tickets(view), keys.TICKETS_ALL, conversations],
                args=[first, last, view, assignee or "", now, keys.ticket("")],
            )
        return int(await self._client.hincrby(keys.VIEW_COUNTS, view, count))

    # Agents.

    async def set_availability(self, agent: str, status: str) -> None:
        await self._client.hset(keys.AVAILABILITY, agent, status)

    async def set_presence(self, ticket_id: int, agent: str, viewing: bool) -> list[str] | None:
        """Who has the ticket open after this change; None when the ticket does not exist."""
        if not await self.ticket_exists(ticket_id):
            return None
        async with self._client.pipeline(transaction=True) as pipe:
            if viewing:
                pipe.hset(keys.ticket_presence(ticket_id), agent, time.time())
            else:
                pipe.hdel(keys.ticket_presence(ticket_id), agent)
            pipe.hkeys(keys.ticket_presence(ticket_id))
            results = await pipe.execute()
        return sorted(results[-1])

    async def conversation_rows(self, agent: str, start: int, stop: int) -> list[ConversationRow]:
        """Newest activity first; `stop` is inclusive and -1 means the end."""
        rows = await self._client.zrevrange(keys.agent_conversations(agent), start, stop, withscores=True)
        return [ConversationRow(int(member), float(score)) for member, score in rows]

    async def subjects(self, ticket_ids: Sequence[int]) -> list[str | None]:
        async with self._client.pipeline(transaction=False) as pipe:
            for ticket_id in ticket_ids:
                pipe.hget(keys.ticket(ticket_id), "subject")
            return list(await pipe.execute())

    def _script(self, source: str) -> Any:
        if source not in self._scripts:
            self._scripts[source] = self._client.register_script(source)
        return self._scripts[source]

    # Live updates and failpoints.

    async def publish_live(self, channel: str, payload: dict[str, Any]) -> int:
        return await live_feed.publish_async(self._client, channel, payload, history=self._live_history)

    async def failpoints(self) -> dict[str, Any]:
        return failpoints.decode(await self._client.hgetall(keys.FAILPOINTS))

    async def set_failpoint(self, name: str, value: Any) -> None:
        await self._client.hset(keys.FAILPOINTS, name, json.dumps(value))

    async def clear_failpoint(self, name: str) -> bool:
        return bool(await self._client.hdel(keys.FAILPOINTS, name))


def _ticket_fields(
    ticket_id: int, subject: str, customer: str, view: str, bot: bool, assignee: str | None, now: float
) -> dict[str, str]:
    return {
        "id": str(ticket_id),
        "subject": subject,
        "customer": customer,
        "view": view,
        "bot": "1" if bot else "0",
        "assignee": assignee or "",
        "status": "open",
        "created_at": f"{now:.6f}",
    }


def _ticket_from_hash(ticket_id: int, raw: dict[str, str]) -> dict[str, Any]:
    return {
        "id": ticket_id,
        "subject": raw.get("subject", ""),
        "customer": raw.get("customer", ""),
        "view": raw.get("view", ""),
        "bot": raw.get("bot") == "1",
        "assignee": raw.get("assignee") or None,
        "status": raw.get("status", "open"),
        "created_at": float(raw.get("created_at", 0.0)),
    }
