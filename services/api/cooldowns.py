"""Admission's cooldowns, kept in Redis so that a restarted api still holds callers to them.

Without this, the fix's restart in the gateway incident forgot every cooldown, and the fresh
process let each large account's doomed read in at once, while the herd came back. A cooldown
says a caller's reads cost more than the deadline on the deployment that measured it, so each
belongs to one deployment (a digest of the api's settings): a restart keeps them, a deploy of
other settings (the rollback) starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError

from services.api.admission import Admission
from services.api.store import TicketStore
from services.common.config import Settings

RESTORE_TIMEOUT_S = 1.0  # a starting api does not wait longer than this for Redis


def deployment(settings: Settings) -> str:
    """A short name for the api's settings: equal for a restart, different for a deploy of others."""
    described = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)
    return hashlib.sha256(described.encode()).hexdigest()[:12]


def keep_cooldowns(admission: Admission, store: TicketStore, deployed: str) -> None:
    """Write each cooldown the admission begins to Redis, in the background; a failed write only
    means a restart in the next seconds forgets it."""
    saving: set[asyncio.Task[None]] = set()

    def save(route: str, caller: str, seconds: float) -> None:
        saved = store.save_cooldown(deployed, route, caller, seconds)
        task = asyncio.get_running_loop().create_task(_quietly(saved))
        saving.add(task)
        task.add_done_callback(saving.discard)

    admission.on_cooldown = save


async def restore_cooldowns(admission: Admission, store: TicketStore, deployed: str) -> None:
    """Take back the cooldowns still running, if Redis answers promptly; start without them if not."""
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        admission.restore(await asyncio.wait_for(store.cooldowns(deployed), RESTORE_TIMEOUT_S))


async def _quietly(write: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(RedisError, OSError):
        await write
