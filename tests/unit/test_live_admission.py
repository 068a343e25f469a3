"""Admission control of the live server: the handshake rate limit and the per-agent connection cap."""

from __future__ import annotations

from services.live.admission import ConnectionCap, HandshakeRateLimiter


def test_the_rate_limiter_admits_a_burst_then_the_steady_rate():
    limiter = HandshakeRateLimiter(rate=10)
    admitted = sum(limiter.allow(now=100.0) for _ in range(25))
    assert admitted == 10  # one second's worth at once
    assert not limiter.allow(now=100.05)
    assert limiter.allow(now=100.12)  # a tenth of a second refills one handshake


def test_the_bucket_never_holds_more_than_its_burst():
    limiter = HandshakeRateLimiter(rate=5, burst=5)
    limiter.allow(now=0.0)
    assert sum(limiter.allow(now=3600.0) for _ in range(20)) == 5


def test_a_rate_of_zero_means_unlimited():
    limiter = HandshakeRateLimiter(rate=0)
    assert all(limiter.allow(now=1.0) for _ in range(10_000))


def test_the_cap_counts_open_connections_per_agent():
    cap = ConnectionCap(limit=2)
    assert cap.acquire("ana") and cap.acquire("ana")
    assert not cap.acquire("ana")  # a third tab
    assert cap.acquire("ben")  # other agents are not affected
    cap.release("ana")
    assert cap.acquire("ana")
    assert cap.open_connections("ana") == 2


def test_a_cap_of_zero_means_unlimited():
    cap = ConnectionCap(limit=0)
    assert all(cap.acquire("ana") for _ in range(1000))
