"""The live-update websocket protocol: versions, message shapes and close codes.

Connecting
    ``ws://HOST:8765/live?token=<token>&version=<n>[&versions=1,2][&resume=views:12,typing:40,...]``

    ``token`` is an agent token (``services.common.tokens``) or the admin token; it may instead come in an
    ``Authorization: Bearer`` header. ``version`` is the protocol version the client was built for. The
    server speaks exactly one version (``LIVE_PROTOCOL``); a client at any other version is stale.
    ``versions`` (optional) negotiates: every version the client can speak. A client offering the server's
    version is served in it (the snapshot or resumed frame says which), so a client built for both sides
    of an upgrade follows it without a reload; without ``versions`` only ``version`` counts.
    ``resume`` carries the last sequence the client applied on every channel (all five channels must be
    named); it is the only way to resume — there is no resume message.

Server -> client (JSON text frames)
    ``{"type": "snapshot", "version": N, "reset": bool, "channels": {"views": {"seq": S, "counts": {...}},
    "availability": {"seq": S, "agents": {...}}, "presence": {"seq": S}, "typing": {"seq": S},
    "assignment": {"seq": S}}}``
        first frame of a fresh session; ``reset`` is true when the client asked to resume and could not
        (resume off, or its sequence fell out of the bounded history): updates in between are gone.
    ``{"type": "resumed", "version": N, "channels": {"views": {"seq": 12}, ...}}``
        first frame of a resumed session; the missed updates follow, in order.
    ``{"type": "update", "channel": C, "seq": n, "data": {...}}``
        one live update; ``seq`` is gap-free per channel (the Redis stream entry ``<seq>-0``).
    ``{"type": "ping", "t": unix_time}``  every ``LIVE_HEARTBEAT_S``; answer with a pong.
    ``{"type": "subscribed", "channels": [...]}``  acknowledges a subscribe.
    ``{"type": "error", "reason": R, ...}``  sent just before a close that the client must understand
        (``unauthorized``, ``unsupported_version`` with ``server_version``, ``malformed_frame``,
        ``too_many_connections``, ``try_again_later``).

Client -> server
    ``{"type": "pong"}``  answers a ping (any frame counts as a sign of life).
    ``{"type": "subscribe", "channels": [...]}``  only these channels from now on (default: all).
    Anything else — binary frames, non-JSON, unknown types — closes that connection with 4003.

Close codes (``CloseCode``)

| code | name | when | the client should |
| --- | --- | --- | --- |
| 1000 | NORMAL | orderly close | reconnect (backoff) |
| 1001 | GOING_AWAY | server restart or upgrade | reconnect (jittered backoff) |
| 1008 | POLICY_VIOLATION | its send queue overflowed: too slow to keep up | reconnect (backoff) |
| 1012 | SERVICE_RESTART | stale client, vulnerable profile only (see below); history reset | reconnect |
| 1013 | TRY_AGAIN_LATER | admission control: too many handshakes/s; Redis not ready | reconnect (backoff) |
| 4001 | UNAUTHORIZED | missing or invalid token | stop |
| 4002 | UNSUPPORTED_VERSION | protocol version is not the server's: a stale client | stop, banner "reload" |
| 4003 | MALFORMED_FRAME | binary/non-JSON frame, unknown type, unreadable resume | reconnect (backoff) |
| 4008 | TOO_MANY_CONNECTIONS | agent at LIVE_MAX_CONNECTIONS_PER_AGENT sessions | stop, "too many tabs" |
| 4009 | HEARTBEAT_TIMEOUT | nothing heard for LIVE_HEARTBEAT_TIMEOUT_S (half-open) | reconnect, resume |

4002 is the hardened answer to a stale client: an ``error`` frame ``unsupported_version`` with
``server_version``, then the close; the client stops and shows "stale live notifications connection,
reload". With LIVE_STALE_CLIENT_CLOSE=reconnect (the incident) the server accepts the stale client and
closes it 1012 instead, a code clients take as "reconnect now": every stale tab comes straight back.
1012 is also sent to every session of a channel whose stream history was reset or skipped (Redis lost
data, or the reader fell behind the history), so the clients reconnect and get a fresh snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from services.common.live_feed import CHANNELS

PROTOCOL_VERSIONS = (1, 2)  # every version ever released; the server speaks one of them
PATH = "/live"


class CloseCode(IntEnum):
    """Why the live server closed a connection (see the module docstring for the full table)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    UNAUTHORIZED = 4001
    UNSUPPORTED_VERSION = 4002
    MALFORMED_FRAME = 4003
    TOO_MANY_CONNECTIONS = 4008
    HEARTBEAT_TIMEOUT = 4009


class Advice(Enum):
    """What a client does after a close."""

    RECONNECT = "reconnect"  # after the reconnect policy's delay
    RELOAD = "reload"  # stale client: only a reload (a newer build) can help
    STOP_UNAUTHORIZED = "unauthorized"  # the token is wrong; retrying cannot help
    TOO_MANY_TABS = "too_many_tabs"  # the agent's other tabs hold every seat: retrying only adds load


def advice_for_close(code: int | None) -> Advice:
    """The client's next step after a close with this code (None: the TCP connection just dropped)."""
    if code == CloseCode.UNAUTHORIZED:
        return Advice.STOP_UNAUTHORIZED
    if code == CloseCode.UNSUPPORTED_VERSION:
        return Advice.RELOAD
    if code == CloseCode.TOO_MANY_CONNECTIONS:
        return Advice.TOO_MANY_TABS
    return Advice.RECONNECT


class MalformedFrame(ValueError):
    """A client frame or handshake parameter the server does not understand (close 4003)."""


# --- handshake ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handshake:
    token: str | None
    version: int | None  # None: missing or not a number (treated as unsupported)
    resume: dict[str, int] | None
    versions: frozenset[int] | None = None  # every version the client can speak (None: only `version`)


def parse_handshake(path: str, authorization: str | None = None) -> Handshake:
    """Read token, version and resume from the request path (and an optional Authorization header).

    Raises MalformedFrame for a resume parameter that cannot be read.
    """
    query = parse_qs(urlsplit(path).query)
    token = _first(query, "token")
    if token is None and authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip() or None
    raw_resume = _first(query, "resume")
    raw_versions = _first(query, "versions")
    return Handshake(
        token=token,
        version=_parse_version(_first(query, "version")),
        resume=parse_resume(raw_resume) if raw_resume is not None else None,
        versions=_parse_versions(raw_versions) if raw_versions is not None else None,
    )


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _parse_version(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def _parse_versions(raw: str) -> frozenset[int]:
    items = [item.strip() for item in raw.split(",")]
    if not items or not all(item.isdigit() for item in items):
        raise MalformedFrame(f"versions {raw[:40]!r}: expected a comma-separated list of numbers")
    return frozenset(int(item) for item in items)


def is_supported(client_version: int | None, server_version: int) -> bool:
    """A server speaks exactly one version; anything else (older, newer, unknown, missing) is stale."""
    return client_version is not None and client_version == server_version


def accepts(handshake: Handshake, server_version: int) -> bool:
    """Negotiation: the client is served when it offers the server's version (or was built for it)."""
    if handshake.versions is not None and server_version in handshake.versions:
        return True
    return is_supported(handshake.version, server_version)


def parse_resume(raw: str) -> dict[str, int]:
    """``views:12,typing:40`` -> ``{"views": 12, "typing": 40}``."""
    positions: dict[str, int] = {}
    for item in raw.split(","):
        channel, sep, seq = item.strip().partition(":")
        if not sep or channel not in CHANNELS or not seq.isdigit():
            raise MalformedFrame(f"resume item {item!r}: expected <channel>:<seq> with a known channel")
        if channel in positions:
            raise MalformedFrame(f"resume names channel {channel!r} twice")
        positions[channel] = int(seq)
    return positions


def format_resume(positions: Mapping[str, int]) -> str:
    return ",".join(f"{channel}:{seq}" for channel, seq in positions.items())


def live_url(
    base: str,
    token: str,
    version: int,
    resume: Mapping[str, int] | None = None,
    versions: Iterable[int] | None = None,
) -> str:
    """The connect URL for a server at ``base`` (``ws://host:port``, with or without ``/live``)."""
    base = base.rstrip("/")
    if not base.endswith(PATH):
        base += PATH
    params = {"token": token, "version": str(version)}
    if versions is not None:
        params["versions"] = ",".join(str(v) for v in sorted(set(versions)))
    if resume:
        params["resume"] = format_resume(resume)
    return f"{base}?{urlencode(params, safe=':,')}"


# --- client -> server --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class Subscribe:
    channels: frozenset[str]


ClientMessage = Pong | Subscribe


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """Decode one client frame; raises MalformedFrame for anything the protocol does not define."""
    if not isinstance(frame, str):
        raise MalformedFrame("binary frames are not part of the protocol")
    try:
        message = json.loads(frame)
    except ValueError:
        raise MalformedFrame("frame is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MalformedFrame("frame must be a JSON object with a string 'type'")
    kind = message["type"]
    if kind == "pong":
        return Pong()
    if kind == "subscribe":
        channels = message.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) and c in CHANNELS for c in channels):
            raise MalformedFrame(f"subscribe needs 'channels': a list drawn from {', '.join(CHANNELS)}")
        return Subscribe(frozenset(channels))
    raise MalformedFrame(f"unknown message type {kind[:40]!r}")


PONG = '{"type":"pong"}'


def subscribe(channels: Iterable[str]) -> str:
    return _dump({"type": "subscribe", "channels": list(channels)})


# --- server -> client --------------------------------------------------------------------------


def update(channel: str, seq: int, data_json: str) -> str:
    """An update frame around already-encoded JSON data, encoded once and shared by every client."""
    return f'{{"type":"update","channel":{json.dumps(channel)},"seq":{seq},"data":{data_json}}}'


def snapshot(version: int, channels: Mapping[str, Mapping[str, Any]], reset: bool) -> str:
    return _dump({"type": "snapshot", "version": version, "reset": reset, "channels": channels})


def resumed(version: int, positions: Mapping[str, int]) -> str:
    return _dump(
        {"type": "resumed", "version": version, "channels": {c: {"seq": s} for c, s in positions.items()}}
    )


def ping(t: float) -> str:
    return _dump({"type": "ping", "t": round(t, 3)})


def subscribed(channels: Iterable[str]) -> str:
    return _dump({"type": "subscribed", "channels": sorted(channels)})


def error(reason: str, **details: Any) -> str:
    return _dump({"type": "error", "reason": reason, **details})


def parse_server_message(frame: str | bytes) -> dict[str, Any]:
    """Decode one server frame for a client; raises MalformedFrame when it is not a JSON object."""
    try:
        message = json.loads(frame)
    except ValueError:
        raise MalformedFrame("server frame is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MalformedFrame("server frame must be a JSON object with a string 'type'")
    return message


def _dump(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
