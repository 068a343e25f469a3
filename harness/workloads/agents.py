"""Simulated helpdesk agents: a population of browser tabs on the live server, and agents acting
through the api so that every live channel moves.

A tab is one `LiveClient`. Agents have one to four tabs; a share of the tabs run a stale web-app build
that speaks only protocol version 1; some laptops go to sleep (the tab stops reading its socket
without closing it) and wake later. Every update a tab applies is recorded in the run's history as an
observation of kind ``live_update`` (meta: client, channel, seq, session, reset), which
`harness.checks.checker.check_live` judges; each tab also keeps the view counts it would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis

from harness.checks.latency import LatencySummary, summarize
from harness.engine.waiting import WaitTimeout, pause, wait_until
from harness.record.history import History
from harness.stack import credentials
from services.common import keys
from services.common.live_feed import CHANNELS
from services.live.client import Banner, LiveClient
from services.live.reconnect import ReconnectPolicy, policy_named
from services.live.state import SNAPSHOT_STATE_CHANNELS

LIVE_UPDATE = "live_update"
CURRENT_VERSIONS = (1, 2)  # an up-to-date build speaks both sides of the upgrade
STALE_VERSIONS = (1,)  # a build from before the upgrade
# Share of agents with n tabs open: some keep more tabs than a per-agent connection cap of 4 admits.
TAB_WEIGHTS = {1: 0.3, 2: 0.3, 3: 0.2, 4: 0.1, 5: 0.05, 6: 0.05}
TERMINAL_BANNERS = (Banner.STALE_RELOAD, Banner.UNAUTHORIZED, Banner.TOO_MANY_TABS)  # the tab stopped
_TCP_ESTABLISHED = 1  # tcpi_state of a connection neither side has closed


@dataclass(frozen=True)
class PopulationPlan:
    tabs: int = 1000
    stale_share: float = 0.1  # tabs still on a build that speaks only version 1
    sleeper_share: float = 0.05  # laptops that sleep through the upgrade
    late_sleeper_share: float = 0.05  # laptops that fall asleep after it (half-open connections)
    ramp_per_s: float = 100.0  # new connections per second while the population logs in
    # The web app's own client, as the product's settings declare it (LIVE_CLIENT_RECONNECT, LIVE_RESUME).
    reconnect: str = "full_jitter"  # or "naive": no jitter, reset on every handshake
    backoff_cap_s: float = 5.0  # longest wait: tabs come back soon after a long restart
    resume: bool = True  # resume from the last sequences after a reconnect
    not_connected_after_s: float = 20.0  # the "Not connected to live updates" banner


@dataclass
class Tab:
    name: str
    agent: str
    stale: bool
    cohort: str  # awake | sleeper | late_sleeper
    client: LiveClient = field(init=False)
    session: int = 0  # connections that delivered a snapshot or a resume
    views_seq: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # the view counts the tab shows

    @property
    def should_be_live(self) -> bool:
        """Awake and not told to stop: this tab's counts must follow the truth (a red "not connected"
        banner does not excuse wrong counts; a "reload" or "too many tabs" banner does: the agent knows)."""
        return not self.client.asleep and self.client.banner not in TERMINAL_BANNERS


SampleSink = Callable[..., None]  # `run.sample` bound to a stream name: sink(**fields)


class AgentPopulation:
    def __init__(self, live_url: str, history: History, plan: PopulationPlan, rng: random.Random) -> None:
        self.plan = plan
        self.history = history
        self.live_url = live_url
        self._phases: list[tuple[float, str]] = [(0.0, "before")]  # (wall start, name), ascending
        self._latency: dict[str, list[float]] = {}
        self.tabs = self._build(rng)

    # -- the population ---------------------------------------------------------------------------

    def _build(self, rng: random.Random) -> list[Tab]:
        tabs: list[Tab] = []
        sizes, weights = list(TAB_WEIGHTS), list(TAB_WEIGHTS.values())
        agent_number = 0
        while len(tabs) < self.plan.tabs:
            agent_number += 1
            agent = f"agent-{agent_number:05d}"
            token = credentials.agent_token(agent)
            stale = rng.random() < self.plan.stale_share  # a stale build is per browser: all its tabs
            for _ in range(min(rng.choices(sizes, weights)[0], self.plan.tabs - len(tabs))):
                draw = rng.random()
                cohort = (
                    "sleeper"
                    if draw < self.plan.sleeper_share
                    else "late_sleeper"
                    if draw < self.plan.sleeper_share + self.plan.late_sleeper_share
                    else "awake"
                )
                tabs.append(self._tab(f"{agent}/tab{len(tabs)}", agent, token, stale, cohort))
        return tabs

    def _tab(self, name: str, agent: str, token: str, stale: bool, cohort: str) -> Tab:
        versions = STALE_VERSIONS if stale else CURRENT_VERSIONS
        tab = Tab(name, agent, stale, cohort)
        tab.client = LiveClient(
            self.live_url,
            token,
            version=versions[0],
            versions=versions,
            policy=self._policy(),
            resume=self.plan.resume,
            name=name,
            not_connected_after_s=self.plan.not_connected_after_s,
            on_update=lambda channel, seq, data, at: self._on_update(tab, channel, seq, data, at),
            on_event=lambda kind, info: self._on_event(tab, kind, info),
        )
        return tab

    def _policy(self) -> ReconnectPolicy:
        return policy_named(self.plan.reconnect, cap=self.plan.backoff_cap_s)

    def _observe(self, tab: Tab, channel: str, seq: int, at: float, **baseline: bool) -> None:
        """One update applied, or (with `snapshot=True`) a snapshot's position: the checker's input."""
        self.history.observe(
            LIVE_UPDATE,
            f"{channel}:{seq}",
            at,
            client=tab.name,
            channel=channel,
            seq=seq,
            session=tab.session,
            **baseline,
        )

    def _on_update(self, tab: Tab, channel: str, seq: int, data: dict[str, Any], at: float) -> None:
        self._observe(tab, channel, seq, at)
        published = data.get("at")
        # Sleeping laptops read a backlog on waking: that is the sleep, not the fan-out, so it is left out.
        if tab.cohort == "awake" and isinstance(published, int | float):
            # By when it was published: a replay after a reconnect counts against the phase it belongs to.
            phase = next(name for start, name in reversed(self._phases) if published >= start)
            self._latency.setdefault(phase, []).append(at - published)
        if channel == "views" and "view" in data:
            tab.counts[str(data["view"])] = int(data.get("count", 0))
            tab.views_seq = seq

    def _on_event(self, tab: Tab, kind: str, info: dict[str, Any]) -> None:
        if kind == "resumed":
            tab.session += 1
        elif kind == "snapshot":
            tab.session += 1
            channels = info.get("channels", {})
            views = channels.get("views", {})
            tab.counts = {str(v): int(c) for v, c in (views.get("counts") or {}).items()}
            tab.views_seq = int(views.get("seq", 0))
            # Every snapshot is a new baseline for the checker: it says which channels' state it
            # restored, so only updates skipped on the others count as missed.
            now = time.time()
            for channel, state in channels.items():
                self._observe(
                    tab,
                    channel,
                    int(state.get("seq", 0)),
                    now,
                    snapshot=True,
                    carried=channel in SNAPSHOT_STATE_CHANNELS,
                    reset=bool(info.get("reset")),
                )

    def begin_phase(self, name: str, at: float | None = None) -> None:
        """Updates published from `at` (wall time, default now) count towards latency phase `name`."""
        self._phases.append((time.time() if at is None else at, name))

    def cohort(self, name: str) -> list[Tab]:
        return [tab for tab in self.tabs if tab.cohort == name]

    @property
    def current_tabs(self) -> list[Tab]:
        """Tabs on an up-to-date build: they must get every update."""
        return [tab for tab in self.tabs if not tab.stale]

    @property
    def stale_tabs(self) -> list[Tab]:
        return [tab for tab in self.tabs if tab.stale]

    # -- lifecycle --------------------------------------------------------------------------------

    async def ramp(self, timeout: float = 120.0) -> int:
        """Open every tab at the plan's rate; returns how many tabs are connected at the end."""
        interval = 1.0 / self.plan.ramp_per_s
        started = time.monotonic()
        for n, tab in enumerate(self.tabs):
            tab.client.start()
            delay = started + (n + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        with contextlib.suppress(WaitTimeout):  # the caller reports how many made it
            await wait_until(
                lambda: self.connected() + self.stopped() == len(self.tabs),
                timeout=timeout,
                what="every tab connected or told to stop",
                interval=0.5,
            )
        return self.connected()

    async def stop(self) -> None:
        for tab in self.tabs:
            tab.client.wake()
        # Closing a thousand sockets at once is fine; in chunks keeps the event loop responsive.
        for start in range(0, len(self.tabs), 200):
            await asyncio.gather(
                *(tab.client.stop() for tab in self.tabs[start : start + 200]), return_exceptions=True
            )

    def sleep(self, tabs: Iterable[Tab]) -> None:
        for tab in tabs:
            tab.client.sleep()

    def wake(self, tabs: Iterable[Tab]) -> None:
        for tab in tabs:
            tab.client.wake()

    # -- what the population sees -------------------------------------------------------------------

    def connected(self, tabs: Iterable[Tab] | None = None) -> int:
        return sum(
            1 for tab in (self.tabs if tabs is None else tabs) if tab.client.banner is Banner.CONNECTED
        )

    def stopped(self, tabs: Iterable[Tab] | None = None) -> int:
        """Tabs the server told to stop (reload, too many tabs, unauthorized): they do not retry."""
        chosen = self.tabs if tabs is None else tabs
        return sum(1 for tab in chosen if tab.client.banner in TERMINAL_BANNERS)

    def served_in(self, version: int) -> int:
        """Tabs with a live session in protocol `version`."""
        return sum(
            1
            for tab in self.tabs
            if tab.client.negotiated_version == version and tab.client.banner is Banner.CONNECTED
        )

    def attempts(self) -> int:
        return sum(tab.client.stats.attempts for tab in self.tabs)

    def handshakes(self) -> int:
        return sum(tab.client.stats.handshakes for tab in self.tabs)

    def counters(self) -> dict[str, int]:
        """Connection attempts and handshakes so far, split by build (stale or up to date)."""
        totals = {"attempts": 0, "handshakes": 0, "stale_attempts": 0, "stale_handshakes": 0}
        for tab in self.tabs:
            totals["attempts"] += tab.client.stats.attempts
            totals["handshakes"] += tab.client.stats.handshakes
            if tab.stale:
                totals["stale_attempts"] += tab.client.stats.attempts
                totals["stale_handshakes"] += tab.client.stats.handshakes
        return totals

    def roster(self) -> list[dict[str, Any]]:
        """One compact row per tab: who it is and where it ended (banner, connections, close codes)."""
        return [
            {
                "tab": tab.name,
                "agent": tab.agent,
                "stale": tab.stale,
                "cohort": tab.cohort,
                "banner": str(tab.client.banner),
                "attempts": tab.client.stats.attempts,
                "handshakes": tab.client.stats.handshakes,
                "closes": {str(code): n for code, n in tab.client.stats.close_codes.items()},
            }
            for tab in self.tabs
        ]

    def banners(self, tabs: Iterable[Tab] | None = None) -> dict[str, int]:
        return dict(Counter(str(tab.client.banner) for tab in (self.tabs if tabs is None else tabs)))

    def close_codes(self) -> dict[str, int]:
        total: Counter[int] = Counter()
        for tab in self.tabs:
            total.update(tab.client.stats.close_codes)
        return {str(code): count for code, count in sorted(total.items())}

    def counter_totals(self, tabs: Iterable[Tab] | None = None) -> dict[str, int]:
        """The clients' own counters summed (missed: updates a fresh snapshot skipped over)."""
        names = ("attempts", "handshakes", "snapshots", "resets", "resumes", "updates", "duplicates", "gaps")
        chosen = list(self.tabs if tabs is None else tabs)
        totals = {name: sum(getattr(tab.client.stats, name) for tab in chosen) for name in names}
        totals["missed"] = sum(tab.client.stats.missed for tab in chosen)
        return totals

    def half_open(self, tabs: Iterable[Tab]) -> int:
        """Sleeping tabs whose TCP connection is still established: the server holds them open."""
        return sum(1 for tab in tabs if tab.client.asleep and _established(tab.client))

    def latency(self) -> dict[str, LatencySummary]:
        return {phase: summarize(values) for phase, values in self._latency.items()}

    async def sample_every_second(self, stop: asyncio.Event, sink: SampleSink) -> None:
        """Connections over time, from both sides, handed to `sink` once a second."""
        health = live_http_url(self.live_url, "/health")
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not stop.is_set():
                server: int | None = None
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    server = int((await client.get(health)).json()["connections"])
                sink(at=round(time.time(), 3), connected=self.connected(), server=server, **self.counters())
                await pause(stop, 1.0)


def live_http_url(live_url: str, path: str) -> str:
    """The live server's HTTP endpoint `path` (/health, /stale-clients) beside its websocket URL."""
    return live_url.replace("ws://", "http://", 1).rstrip("/").removesuffix("/live") + path


def _established(client: LiveClient) -> bool:
    connection = client.connection
    if connection is None:
        return False
    sock = connection.transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == _TCP_ESTABLISHED
    except OSError:
        return False


# -- what the tabs should show ----------------------------------------------------------------------


class ViewTruth:
    """The view counts at any recent sequence of the views channel, from Redis.

    View updates carry absolute counts, so the count of a view at sequence s is the last update of that
    view at or before s, or the current count when the view has not changed since.
    """

    def __init__(self, seq: int, counts: dict[str, int], updates: list[tuple[int, str, int]]) -> None:
        self.seq = seq
        self.counts = counts
        self._updates = updates  # (seq, view, count), ascending
        self._by_seq: dict[int, dict[str, int]] = {}  # most tabs sit at the same few sequences

    @classmethod
    async def read(cls, client: aioredis.Redis) -> ViewTruth:
        async with client.pipeline(transaction=True) as pipe:
            pipe.get(keys.live_sequence("views"))
            pipe.hgetall(keys.VIEW_COUNTS)
            pipe.xrange(keys.live_stream("views"))
            seq, counts, entries = await pipe.execute()
        updates = []
        for entry_id, fields in entries:
            data = _json(fields.get("data"))
            if "view" in data:
                updates.append((int(entry_id.split("-")[0]), str(data["view"]), int(data.get("count", 0))))
        return cls(int(seq or 0), {str(v): int(c) for v, c in counts.items()}, updates)

    def at(self, seq: int) -> dict[str, int]:
        if seq not in self._by_seq:
            self._by_seq[seq] = self._counts_at(seq)
        return self._by_seq[seq]

    def _counts_at(self, seq: int) -> dict[str, int]:
        counts = dict(self.counts)
        changed_later = {view for s, view, _ in self._updates if s > seq}
        for view in changed_later:
            earlier = [count for s, v, count in self._updates if v == view and s <= seq]
            if earlier:
                counts[view] = earlier[-1]
            else:
                counts.pop(view, None)  # unknown at that point: leave it out of the comparison
        return counts

    def agrees(self, tab: Tab) -> bool:
        expected = self.at(tab.views_seq)
        return all(tab.counts.get(view) == count for view, count in expected.items())


def _json(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def read_sequences(client: aioredis.Redis) -> dict[str, int]:
    """The true latest sequence of every live channel."""
    values = await client.mget([keys.live_sequence(c) for c in CHANNELS])
    return {channel: int(value or 0) for channel, value in zip(CHANNELS, values, strict=True)}


# -- agents at work ---------------------------------------------------------------------------------


class AgentActivity:
    """Agents typing, opening tickets, changing availability and assigning: a few live updates a second
    on the channels the message load does not move."""

    ACTIONS = ("typing", "presence", "availability", "assignment")

    def __init__(
        self, api_url: str, agents: Sequence[str], tickets: Sequence[int], rate: float, rng: random.Random
    ) -> None:
        self.api_url = api_url
        self.agents = list(agents)
        self.tickets = list(tickets)
        self.rate = rate
        self.statuses: Counter[int | str] = Counter()
        self._rng = rng

    async def run(self, stop: asyncio.Event) -> None:
        interval = 1.0 / self.rate
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as client:
            next_at = time.monotonic()
            while not stop.is_set():
                await self._act(client)
                next_at += interval
                await pause(stop, next_at - time.monotonic())

    async def _act(self, client: httpx.AsyncClient) -> None:
        agent = self._rng.choice(self.agents)
        ticket = self._rng.choice(self.tickets)
        action = self.ACTIONS[self._rng.randrange(len(self.ACTIONS))]
        headers = {"Authorization": f"Bearer {credentials.agent_token(agent)}"}
        try:
            if action == "typing":
                reply = await client.post(f"/tickets/{ticket}/typing", headers=headers)
            elif action == "presence":
                body = {"action": self._rng.choice(("open", "close"))}
                reply = await client.post(f"/tickets/{ticket}/presence", json=body, headers=headers)
            elif action == "availability":
                body = {"status": self._rng.choice(("online", "busy", "away"))}
                reply = await client.put(f"/agents/{agent}/availability", json=body, headers=headers)
            else:
                reply = await client.put(
                    f"/tickets/{ticket}/assignee", json={"agent": agent}, headers=headers
                )
            self.statuses[reply.status_code] += 1
        except httpx.HTTPError as exc:
            self.statuses[type(exc).__name__] += 1
