"""The live server against a bare `websockets` server holding the same connections, side by side.

Memory per connection: both hold the same number of idle connections from this process; the live
server's container memory (its cgroup) and the bare server's resident set, each before and after
the connections open. Fan-out: with every connection open, one update is sent to all of them, a
few times over, and each connection's wait from the send to its arrival is kept (p50, p99). The
live server's update is published into its Redis stream, as any service publishes one, and goes
through its stream reader, sequencing and per-session send queues; the bare server's goes out with
`websockets.broadcast` when its controller asks. The same client process reads both, so its own
cost is in both figures. The tabs reach the live server at its own address on the compose network,
as the bare server is reached directly: the gateway in front of it, and Docker's port proxy in
front of that, are not what is compared. Used by bench/ratios.py; runs alone too:

    .venv/bin/python bench/live_connections.py [--tabs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import docker
import redis.asyncio as aioredis
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.checks.latency import percentile
from harness.stack.compose_stack import ComposeStack
from harness.stack.credentials import agent_token
from services.common import live_feed

TABS_PER_AGENT = 8  # under the live server's per-agent cap
OPEN_PER_S = 150  # under its handshake admission rate
FANOUT_UPDATES = 5  # updates sent one after another, each to every connection
FANOUT_TIMEOUT_S = 30.0
# Echoes what it hears; a frame "broadcast <n>" goes out to every connection instead.
BARE_SERVER = """
import asyncio, websockets
async def serve(ws):
    async for message in ws:
        if message.startswith("broadcast "):
            websockets.broadcast(ws.server.connections, '{"bench": %s}' % message.split()[1])
        else:
            await ws.send(message)
async def main():
    async with websockets.serve(serve, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _container_memory(project: str, service: str) -> int:
    client = docker.from_env()
    (container,) = client.containers.list(
        filters={"label": [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]}
    )
    stats = container.stats(stream=False)["memory_stats"]
    # What the kernel charges the cgroup, less the page cache it can drop.
    return int(stats["usage"]) - int(stats.get("stats", {}).get("inactive_file", 0))


class _Tabs:
    """Open connections, each read from the moment it opens: pings are answered, as a browser tab
    answers them (the live server closes a silent tab), and each bench update's arrival is kept."""

    def __init__(self) -> None:
        self.connections: list[websockets.ClientConnection] = []
        self.arrived: list[dict[int, float]] = []
        self._readers: list[asyncio.Task[None]] = []
        self._arrivals: dict[int, int] = {}  # update -> tabs it reached
        self._all_arrived = asyncio.Event()

    async def open(self, urls: list[str], settle_s: float = 3.0) -> None:
        for n, url in enumerate(urls):
            connection = await websockets.connect(url, max_size=2**20, ping_interval=None)
            self.connections.append(connection)
            self.arrived.append({})
            self._readers.append(asyncio.create_task(self._read(len(self.connections) - 1, connection)))
            if n % OPEN_PER_S == OPEN_PER_S - 1:
                await asyncio.sleep(1.0)
        await asyncio.sleep(settle_s)

    async def _read(self, index: int, connection: websockets.ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in connection:
                if '"bench"' in frame:
                    n = _bench_number(json.loads(frame))
                    self.arrived[index][n] = time.monotonic()
                    self._arrivals[n] = self._arrivals.get(n, 0) + 1
                    if self._arrivals[n] == len(self.arrived):
                        self._all_arrived.set()
                elif '"type":"ping"' in frame.replace(" ", ""):
                    await connection.send('{"type":"pong"}')

    async def fanout(self, send: Callable[[int], Awaitable[None]]) -> list[float]:
        """Send FANOUT_UPDATES updates one after another; every tab's wait for each, in seconds,
        sorted (a tab that never got one counts FANOUT_TIMEOUT_S). An update is recognised by its
        `"bench": <n>` field, wherever the server puts it."""
        waits: list[float] = []
        for n in range(FANOUT_UPDATES):
            self._all_arrived.clear()
            sent = time.monotonic()
            await send(n)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_arrived.wait(), FANOUT_TIMEOUT_S)
            waits += [got[n] - sent if n in got else FANOUT_TIMEOUT_S for got in self.arrived]
        return sorted(waits)

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for connection in self.connections:
            with contextlib.suppress(Exception):
                await connection.close()


def _bench_number(frame: object) -> int:
    if isinstance(frame, dict):
        if "bench" in frame:
            return int(frame["bench"])
        for value in frame.values():
            with contextlib.suppress(LookupError):
                return _bench_number(value)
    raise LookupError("no bench field")


def live_server(stack: ComposeStack, project: str, tabs: int) -> tuple[float, list[float]]:
    """Bytes of the live server's memory per open tab, and each tab's wait for each update.

    The live server is restarted first, as the bare server is started afresh: memory a previous
    population left in its heap would be reused by this one and not counted (a second `make bench`
    on the same server measured 1.5 KiB a tab at 5,000 tabs, against 19.9 KiB on a fresh one)."""
    stack.restart("live")
    stack.wait_healthy(120)
    endpoints, live_url = stack.endpoints(), live_address(stack)
    urls = [
        f"{live_url}/live?token={agent_token(f'bench-tab-{n // TABS_PER_AGENT}')}&version=1"
        for n in range(tabs)
    ]
    before = _container_memory(project, "live")

    async def measure() -> tuple[int, list[float]]:
        tabs_open = _Tabs()
        try:
            await tabs_open.open(urls)
            memory = _container_memory(project, "live")
            async with aioredis.from_url(endpoints.redis, decode_responses=True) as client:

                async def publish(n: int) -> None:
                    await live_feed.publish_async(client, "typing", {"bench": n})

                return memory, await tabs_open.fanout(publish)
        finally:
            await tabs_open.close()

    after, waits = asyncio.run(measure())
    return (after - before) / tabs, waits


def bare_server(tabs: int) -> tuple[float, list[float]]:
    """Bytes of a bare websockets server's resident set per open connection, and each connection's
    wait for each broadcast."""
    server = subprocess.Popen([sys.executable, "-c", BARE_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        time.sleep(0.5)
        before = _rss_bytes(server.pid)

        async def measure() -> tuple[int, list[float]]:
            tabs_open = _Tabs()
            controller = await websockets.connect(f"ws://127.0.0.1:{port}/")
            try:
                await tabs_open.open([f"ws://127.0.0.1:{port}/"] * tabs)
                memory = _rss_bytes(server.pid)

                async def broadcast(n: int) -> None:
                    await controller.send(f"broadcast {n}")

                return memory, await tabs_open.fanout(broadcast)
            finally:
                await tabs_open.close()
                await controller.close()

        after, waits = asyncio.run(measure())
    finally:
        server.terminate()
        server.wait(10)
    return (after - before) / tabs, waits


def live_address(stack: ComposeStack) -> str:
    """The live server's own websocket address on the compose network, past the gateway."""
    return f"ws://{stack.address('live')}:8765"


def rows(stack: ComposeStack, tabs: int) -> list:
    from ratios import Row

    from harness.stack.compose import project_name

    live_memory, live_waits = live_server(stack, project_name(), tabs)
    bare_memory, bare_waits = bare_server(tabs)
    bare = f"a bare websockets server holding {tabs:,} connections"
    return [
        Row(f"live server memory per tab ({tabs:,} tabs)", live_memory / 1024, "KiB", bare_memory / 1024,
            bare, "<= 20 KiB", False),
        Row(f"live fan-out of one update to {tabs:,} tabs, p50", percentile(live_waits, 50), "s",
            percentile(bare_waits, 50), f"{bare}, broadcasting", "", False),
        Row(f"live fan-out of one update to {tabs:,} tabs, p99", percentile(live_waits, 99), "s",
            percentile(bare_waits, 99), f"{bare}, broadcasting", "", False),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tabs", type=int, default=1000)
    args = parser.parse_args()
    from harness.stack.compose import project_name

    live_memory, live_waits = live_server(ComposeStack(), project_name(), args.tabs)
    bare_memory, bare_waits = bare_server(args.tabs)
    print(
        f"{args.tabs} tabs: memory per tab live {live_memory / 1024:.1f} KiB, bare server "
        f"{bare_memory / 1024:.1f} KiB; fan-out p50/p99 live {_ms(live_waits, 50)}/{_ms(live_waits, 99)}, "
        f"bare server {_ms(bare_waits, 50)}/{_ms(bare_waits, 99)}"
    )


def _ms(waits: list[float], p: float) -> str:
    return f"{percentile(waits, p) * 1000:.0f} ms"


if __name__ == "__main__":
    main()
