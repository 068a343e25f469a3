"""The live-update websocket server (``python -m services.live``), with /health and /metrics on the same port.

A connection goes through admission (handshake rate, Redis ready), authentication, version check and
the per-agent cap, then receives a snapshot (or the updates it missed, on resume) and live updates.
The protocol and close codes are described in ``services.live.protocol``.

HTTP on the same port: ``GET /health`` -> 200 ``{"status": "alive", "service": "live", "protocol": N,
"connections": n, ...}``; ``GET /metrics`` -> Prometheus text; ``GET /stale-clients`` -> agents seen
on an outdated protocol version and those blocked (``services.live.outdated``); websocket upgrades on
``/live``.

Switches (environment): LIVE_PORT (8765), LIVE_PROTOCOL (1), LIVE_RESUME (on), LIVE_HISTORY (1000, used by
publishers), LIVE_STALE_CLIENT_CLOSE (reload | reconnect), LIVE_MAX_HANDSHAKES_PER_S (200; 0 = unlimited),
LIVE_MAX_CONNECTIONS_PER_AGENT (10; 0 = unlimited), LIVE_HEARTBEAT_S (10), LIVE_HEARTBEAT_TIMEOUT_S (25;
0 = never), LIVE_SEND_QUEUE (1000).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import time
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from services.common.config import Settings
from services.common.tokens import agent_from_token
from services.live import protocol
from services.live.admission import ConnectionCap, HandshakeRateLimiter
from services.live.fanout import Fanout
from services.live.metrics import CONTENT_TYPE, LiveMetrics
from services.live.outdated import Blocklist, StaleClients
from services.live.protocol import CloseCode, MalformedFrame, Pong, Subscribe
from services.live.sequence import resume_is_possible
from services.live.session import Session
from services.live.shared_read import SharedRead
from services.live.state import read_missed, read_snapshot

log = logging.getLogger("live.server")

ADMIN = "admin"  # the agent name sessions opened with the admin token run under (exempt from the cap)
_MAX_FRAME_BYTES = 64 * 1024
_CLOSE_TIMEOUT_S = 5.0
# On shutdown every tab gets 1001 at once; a laptop asleep never answers, and a release must not wait on it.
_SHUTDOWN_CLOSE_TIMEOUT_S = 0.5


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = LiveMetrics()
        self._limiter = HandshakeRateLimiter(settings.live_max_handshakes_per_s)
        self._cap = ConnectionCap(settings.live_max_connections_per_agent)
        # A bounded pool: a handshake storm queues for Redis instead of opening a connection per client.
        self._redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=32,
                timeout=5,
                decode_responses=True,
                socket_connect_timeout=2,
                socket_timeout=5,
            )
        )
        self._reader_redis = aioredis.Redis.from_url(
            settings.redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=10
        )
        # A read never brings more than half a send queue: a burst alone cannot overflow a healthy client.
        batch = max(1, min(500, settings.live_send_queue // 2))
        self.fanout = Fanout(self._reader_redis, self.metrics, batch=batch)
        self.stale_clients = StaleClients()
        self._snapshots = SharedRead(lambda: read_snapshot(self._redis))
        self.blocklist = Blocklist(self._reader_redis)

    # --- HTTP -----------------------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == protocol.PATH:
            return None  # go on with the websocket handshake
        if path == "/health":
            body = {
                "status": "alive",
                "service": "live",
                "protocol": self.settings.live_protocol,
                "connections": len(self.fanout.sessions),
                "streams_ready": self.fanout.ready.is_set(),
                "stale_close": self.settings.live_stale_close,
                "switches": self.settings.switches(),
            }
            return _respond(connection, 200, json.dumps(body), "application/json")
        if path == "/stale-clients":
            now = asyncio.get_running_loop().time()
            body = {"agents": self.stale_clients.report(now), "blocked": sorted(self.blocklist.agents)}
            return _respond(connection, 200, json.dumps(body), "application/json")
        if path == "/metrics":
            return _respond(connection, 200, self.metrics.render().decode(), CONTENT_TYPE)
        return _respond(connection, 404, json.dumps({"error": f"no route {path}"}), "application/json")

    # --- websocket ------------------------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        try:
            await self._serve(ws)
        finally:
            if ws.state is State.OPEN:
                await ws.close()
            await ws.wait_closed()
            sent = ws.protocol.close_sent
            code = sent.code if sent is not None else (ws.close_code or 1006)
            self.metrics.closes.labels(str(code)).inc()

    async def _serve(self, ws: ServerConnection) -> None:
        loop_now = asyncio.get_running_loop().time()
        if not self.fanout.ready.is_set():
            await self._refuse(ws, "unavailable", CloseCode.TRY_AGAIN_LATER, "try_again_later")
            return
        if not self._limiter.allow(loop_now):
            await self._refuse(ws, "throttled", CloseCode.TRY_AGAIN_LATER, "try_again_later")
            return
        try:
            handshake = protocol.parse_handshake(ws.request.path, ws.request.headers.get("Authorization"))
        except MalformedFrame as exc:
            await self._refuse(ws, "malformed", CloseCode.MALFORMED_FRAME, "malformed_frame", detail=str(exc))
            return
        agent = self._authenticate(handshake.token)
        if agent is None:
            await self._refuse(ws, "unauthorized", CloseCode.UNAUTHORIZED, "unauthorized")
            return
        server_version = self.settings.live_protocol
        if not protocol.accepts(handshake, server_version):
            self.stale_clients.saw(agent, loop_now)
            if self.settings.live_stale_close == "reconnect" and agent not in self.blocklist:
                # The incident: the stale client is told the service restarts, so it comes straight back.
                self.metrics.handshakes.labels("stale_reconnect").inc()
                await ws.close(CloseCode.SERVICE_RESTART, "service restart")
            else:
                await self._refuse(
                    ws,
                    "unsupported_version",
                    CloseCode.UNSUPPORTED_VERSION,
                    "unsupported_version",
                    server_version=server_version,
                )
            return
        if agent != ADMIN and not self._cap.acquire(agent):
            await self._refuse(
                ws, "too_many_connections", CloseCode.TOO_MANY_CONNECTIONS, "too_many_connections"
            )
            return
        try:
            await self._run_session(ws, agent, handshake.resume)
        finally:
            if agent != ADMIN:
                self._cap.release(agent)

    async def _run_session(self, ws: ServerConnection, agent: str, resume: dict[str, int] | None) -> None:
        loop = asyncio.get_running_loop()
        session = Session(ws, agent, self.settings.live_send_queue, self.metrics, loop.time())
        session.next_ping = loop.time() + self.settings.live_heartbeat_s
        self.fanout.register(session)  # before reading state, so no update falls between state and stream
        self.metrics.connections.inc()
        try:
            try:
                floor = await self._send_initial_state(ws, resume)
            except (RedisError, OSError) as exc:
                log.warning("cannot read live state for %s: %s", agent, exc)
                await self._refuse(ws, "unavailable", CloseCode.TRY_AGAIN_LATER, "try_again_later")
                return
            except ConnectionClosed:
                return
            self.metrics.handshakes.labels("accepted").inc()
            session.start(floor)
            await self._read(session)
        finally:
            self.fanout.unregister(session)
            self.metrics.connections.dec()
            await session.stop()

    async def _send_initial_state(
        self, ws: ServerConnection, resume: dict[str, int] | None
    ) -> dict[str, int]:
        """Send the snapshot, or the resume and missed updates; returns the positions the client is at."""
        version = self.settings.live_protocol
        if resume is not None and self.settings.live_resume:
            missed = await read_missed(self._redis, resume)
            if resume_is_possible(resume, missed.current, missed.first_retained_after()):
                self.metrics.resumes.labels("ok").inc()
                await ws.send(protocol.resumed(version, resume))
                for channel, updates in missed.updates.items():
                    for seq, data in updates:
                        await ws.send(protocol.update(channel, seq, data))
                        self.metrics.updates_sent.inc()
                return dict(missed.current)
        if resume is not None:
            self.metrics.resumes.labels("reset").inc()
        snapshot = await self._snapshots.get()
        await ws.send(protocol.snapshot(version, snapshot.channels, reset=resume is not None))
        return snapshot.positions

    async def _read(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for frame in session.ws:
                session.last_seen = loop.time()
                try:
                    message = protocol.parse_client_message(frame)
                except MalformedFrame as exc:
                    with contextlib.suppress(ConnectionClosed):
                        await session.ws.send(protocol.error("malformed_frame", detail=str(exc)))
                    session.close_soon(CloseCode.MALFORMED_FRAME, "malformed frame")
                    continue  # the loop ends when the close completes
                if isinstance(message, Subscribe):
                    session.channels = message.channels
                    session.offer((None, 0, protocol.subscribed(message.channels)))
                elif isinstance(message, Pong):
                    pass  # last_seen is all a pong is for

    async def _refuse(
        self, ws: ServerConnection, outcome: str, code: CloseCode, reason: str, **details: object
    ) -> None:
        self.metrics.handshakes.labels(outcome).inc()
        with contextlib.suppress(ConnectionClosed):
            await ws.send(protocol.error(reason, **details))
        await ws.close(code, reason)

    def _authenticate(self, token: str | None) -> str | None:
        if not token:
            return None
        if hmac.compare_digest(token.encode(), self.settings.admin_token.encode()):
            return ADMIN
        return agent_from_token(token, self.settings.token_secret)

    # --- heartbeats -----------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Ping every session every LIVE_HEARTBEAT_S; close 4009 those silent for LIVE_HEARTBEAT_TIMEOUT_S.

        One loop for all sessions: cheaper than a timer per connection.
        """
        interval = self.settings.live_heartbeat_s
        timeout = self.settings.live_heartbeat_timeout_s
        tick = min(1.0, *(x / 4 for x in (interval, timeout) if x > 0))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            ping_frame = None
            for session in list(self.fanout.sessions):
                if session.closing or not session.started:
                    continue
                if timeout > 0 and now - session.last_seen > timeout:
                    log.info(
                        "no frame from %s for %.0fs; closing 4009", session.agent, now - session.last_seen
                    )
                    session.close_soon(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                    continue
                if interval > 0 and now >= session.next_ping:
                    ping_frame = ping_frame or (None, 0, protocol.ping(time.time()))
                    session.offer(ping_frame)
                    session.next_ping = now + interval

    # --- lifetime -------------------------------------------------------------------------------

    async def run(self, host: str = "0.0.0.0") -> None:
        settings = self.settings
        tasks = [
            asyncio.create_task(self.fanout.run()),
            asyncio.create_task(self.heartbeat()),
            asyncio.create_task(self.blocklist.run()),
        ]
        async with serve(
            self.handle,
            host,
            settings.live_port,
            process_request=self.process_request,
            # Liveness is the application heartbeat's (LIVE_HEARTBEAT_S, LIVE_HEARTBEAT_TIMEOUT_S), one loop
            # for all sessions; websockets' own keepalive would add a task per connection (1.8 KiB a tab).
            ping_interval=None,
            close_timeout=_CLOSE_TIMEOUT_S,
            max_size=_MAX_FRAME_BYTES,
            compression=None,  # tiny JSON frames; a deflate context per connection costs more than it saves
        ) as server:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, _shut_down, server)
            log.info(
                "live server on %s:%d protocol=%d resume=%s stale_close=%s handshakes/s=%s per-agent=%d "
                "heartbeat=%ss timeout=%ss",
                host,
                settings.live_port,
                settings.live_protocol,
                settings.live_resume,
                settings.live_stale_close,
                settings.live_max_handshakes_per_s,
                settings.live_max_connections_per_agent,
                settings.live_heartbeat_s,
                settings.live_heartbeat_timeout_s,
            )
            await server.wait_closed()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._redis.aclose()
        await self._reader_redis.aclose()


def _shut_down(server: Server) -> None:
    """Close every session 1001 (going away), waiting only briefly for tabs that stopped reading."""
    for connection in server.connections:
        connection.close_timeout = _SHUTDOWN_CLOSE_TIMEOUT_S
    server.close()


def _respond(connection: ServerConnection, status: int, body: str, content_type: str) -> Response:
    response = connection.respond(status, body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = content_type
    return response


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)  # a storm would flood the log otherwise
    asyncio.run(LiveServer(Settings.from_env()).run())
