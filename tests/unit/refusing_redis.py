"""A stand-in for the api's Redis client in requests that must be refused before any work."""

from __future__ import annotations


class RefusingRedis:
    """Any use fails the test: the request reached Redis although it should have been refused."""

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"the request reached Redis (redis.{name})")
