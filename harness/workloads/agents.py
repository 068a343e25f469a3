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
import itertools
import json
import random
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis

from harness.checks.latency import LatencySummary, summarize
from harness.engine.waiting import pause
from harness.record.history import History
from harness.stack import credentials
from services.common import keys
from services.common.live_feed import CHANNELS
from services.live.client import Banner, LiveClient
from services.live.reconnect import FullJitterBackoff, NaiveBackoff, ReconnectPolicy

LIVE_UPDATE = "live_update"
CURRENT_VERSIONS = (1, 2)  # an up-to-date build speaks both sides of the upgrade
STALE_VERSIONS = (1,)  # a build from before the upgrade
TAB_WEIGHTS = {1: 0.35, 2: 0.35, 3: 0.2, 4: 0.1}  # share of agents with n tabs open
_TCP_ESTABLISHED = 1  # tcpi_state of a connection neither side has closed


@dataclass(frozen=True)
class PopulationPlan:
    tabs: int = 1000
    stale_share: float = 0.1  # tabs still on a build that speaks only version 1
    sleeper_share: float = 0.05  # laptops that sleep through the upgrade
    late_sleeper_share: float = 0.05  # laptops that fall asleep after it (half-open connections)
    ramp_per_s: float = 100.0  # new connections per second while the population logs in
    naive_reconnect: bool = False  # NaiveBackoff (reset on every handshake, no jitter) instead of full jitter
    backoff_cap_s: float = 5.0  # longest full-jitter wait: tabs come back soon after a long restart
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
        """Awake and not told to reload: this tab's counts must follow the truth (a red "not connected"
        banner does not excuse wrong counts; a "reload" banner does, only a reload can help)."""
        return not self.client.asleep and self.client.banner not in (Banner.STALE_RELOAD, Banner.UNAUTHORIZED)


@dataclass
class Sample:
    """One second of the population, as a dashboard would plot it."""

    t: float  # wall-clock unix time
    connected: int  # tabs with a live session
    attempts: int  # connection attempts so far (all tabs)
    handshakes: int  # attempts that reached the server (a websocket opened) so far
    server_connections: int | None  # what the live server reports (None: unreachable)


class AgentPopulation:
    def __init__(self, live_url: str, history: History, plan: PopulationPlan, rng: random.Random) -> None:
        self.plan = plan
        self.history = history
        self.live_url = live_url
        self.samples: list[Sample] = []
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
        return NaiveBackoff() if self.plan.naive_reconnect else FullJitterBackoff(cap=self.plan.backoff_cap_s)

    def _on_update(self, tab: Tab, channel: str, seq: int, data: dict[str, Any], at: float) -> None:
        self.history.observe(
            LIVE_UPDATE,
            f"{channel}:{seq}",
            at,
            client=tab.name,
            channel=channel,
            seq=seq,
            session=tab.session,
        )
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
            if info.get("reset"):
                # The server said updates were skipped: a new baseline for the checker, not a silent gap.
                now = time.time()
                for channel, state in channels.items():
                    seq = int(state.get("seq", 0))
                    self.history.observe(
                        LIVE_UPDATE,
                        f"{channel}:{seq}",
                        now,
                        client=tab.name,
                        channel=channel,
                        seq=seq,
                        session=tab.session,
                        reset=True,
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.connected() < len(self.tabs):
            await asyncio.sleep(0.5)
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

    def peak_handshakes_per_s(self, since: float | None = None, until: float | None = None) -> float:
        return _peak_rate(self.samples, "handshakes", since, until)

    def peak_attempts_per_s(self, since: float | None = None, until: float | None = None) -> float:
        return _peak_rate(self.samples, "attempts", since, until)

    async def sample_every_second(self, stop: asyncio.Event) -> None:
        """Connections over time, from both sides."""
        health = self.live_url.replace("ws://", "http://", 1).rstrip("/").removesuffix("/live") + "/health"
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not stop.is_set():
                server: int | None = None
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    server = int((await client.get(health)).json()["connections"])
                self.samples.append(
                    Sample(time.time(), self.connected(), self.attempts(), self.handshakes(), server)
                )
                await pause(stop, 1.0)


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


def _peak_rate(samples: Sequence[Sample], counter: str, since: float | None, until: float | None) -> float:
    peak = 0.0
    for before, after in itertools.pairwise(samples):
        if (since is not None and after.t < since) or (until is not None and before.t > until):
            continue
        seconds = after.t - before.t
        if seconds > 0:
            peak = max(peak, (getattr(after, counter) - getattr(before, counter)) / seconds)
    return round(peak, 1)


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
