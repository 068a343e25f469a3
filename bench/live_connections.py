"""Memory per websocket connection: the live server against a bare `websockets` echo server.

Both hold the same number of idle connections from this process, measured side by side in the
same run: the live server's container memory (its cgroup) and the echo server's resident set,
each before and after the connections open. Used by bench/ratios.py; runs alone too:

    .venv/bin/python bench/live_connections.py [--tabs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path

import docker
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.stack.credentials import agent_token
from harness.stack.protocol import Endpoints

TABS_PER_AGENT = 8  # under the live server's per-agent cap
OPEN_PER_S = 150  # under its handshake admission rate
ECHO_SERVER = """
import asyncio, websockets
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
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


async def _hold(urls: list[str], settle_s: float = 3.0) -> list[websockets.ClientConnection]:
    connections = []
    for n, url in enumerate(urls):
        connections.append(await websockets.connect(url, max_size=2**20, ping_interval=None))
        if n % OPEN_PER_S == OPEN_PER_S - 1:
            await asyncio.sleep(1.0)
    await asyncio.sleep(settle_s)
    return connections


async def _close(connections: list[websockets.ClientConnection]) -> None:
    for connection in connections:
        with contextlib.suppress(Exception):
            await connection.close()


def live_per_connection(endpoints: Endpoints, project: str, tabs: int) -> float:
    """Bytes of the live server's memory per open tab."""
    urls = [
        f"{endpoints.live}/live?token={agent_token(f'bench-tab-{n // TABS_PER_AGENT}')}&version=1"
        for n in range(tabs)
    ]
    before = _container_memory(project, "live")

    async def measure() -> int:
        connections = await _hold(urls)
        try:
            return _container_memory(project, "live")
        finally:
            await _close(connections)

    after = asyncio.run(measure())
    return (after - before) / tabs


def echo_per_connection(tabs: int) -> float:
    """Bytes of a bare websockets echo server's resident set per open connection."""
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        time.sleep(0.5)
        before = _rss_bytes(server.pid)

        async def measure() -> int:
            connections = await _hold([f"ws://127.0.0.1:{port}/"] * tabs)
            try:
                return _rss_bytes(server.pid)
            finally:
                await _close(connections)

        after = asyncio.run(measure())
    finally:
        server.terminate()
        server.wait(10)
    return (after - before) / tabs


def rows(endpoints: Endpoints, tabs: int) -> list:
    from ratios import Row

    from harness.stack.compose import project_name

    live = live_per_connection(endpoints, project_name(), tabs)
    echo = echo_per_connection(tabs)
    return [
        Row(
            f"live server memory per tab ({tabs:,} tabs)",
            live / 1024,
            "KiB",
            echo / 1024,
            f"a bare websockets echo server holding {tabs:,} connections",
            "<= 20 KiB",
            False,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tabs", type=int, default=1000)
    args = parser.parse_args()
    from harness.stack.compose import project_name
    from harness.stack.compose_stack import ComposeStack

    endpoints = ComposeStack().endpoints()
    live = live_per_connection(endpoints, project_name(), args.tabs)
    echo = echo_per_connection(args.tabs)
    print(f"{args.tabs} tabs: live {live / 1024:.1f} KiB per tab, bare echo server {echo / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
