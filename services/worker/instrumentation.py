"""A Redis "instrumentation" layer that breaks the client it wraps, as a bad deploy once did.

The job runners talk to Redis through `instrument(client, mode)`:
  off          the client itself
  raise_all    every command raises (the library fails on every call)
  break_fetch  the job-fetch commands run, then raise: the job has already left Redis
               (BRPOP popped it, XREADGROUP/XAUTOCLAIM made it pending) when the runner sees the error
The event consumer and the api never go through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

MODES = ("off", "raise_all", "break_fetch")
FETCH_COMMANDS = frozenset({"brpop", "rpop", "lpop", "blpop", "xreadgroup", "xautoclaim", "xclaim"})


class InstrumentationError(RuntimeError):
    """Raised by the broken instrumentation, not by Redis."""


class BrokenInstrumentation:
    """Wraps a redis client; methods named in `broken` raise (after running, when `after_call`)."""

    def __init__(self, client: redis.Redis, broken: Callable[[str], bool], after_call: bool) -> None:
        self._client = client
        self._broken = broken
        self._after_call = after_call

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or not self._broken(name):
            return attribute

        def instrumented(*args: Any, **kwargs: Any) -> Any:
            if self._after_call:
                attribute(*args, **kwargs)
            raise InstrumentationError(f"redis instrumentation failed in {name}()")

        return instrumented


def instrument(client: redis.Redis, mode: str) -> Any:
    """The client the job runners use under the given instrumentation mode."""
    if mode == "off":
        return client
    if mode == "raise_all":
        return BrokenInstrumentation(client, broken=lambda _name: True, after_call=False)
    if mode == "break_fetch":
        return BrokenInstrumentation(client, broken=FETCH_COMMANDS.__contains__, after_call=True)
    raise ValueError(f"unknown redis instrumentation {mode!r}; expected one of {', '.join(MODES)}")
