"""Gorgias, July 2023: an upgrade of the live-update server brought a reconnect storm and silent tabs.

The root cause, replayed: an upgrade of `live` to protocol version 2 while a realistic population is
connected — agents with one to six tabs (some more than a per-agent cap of 4 admits), a share of
browsers on a stale build that speaks only version 1, laptops asleep (connections that stop reading
without closing). The vulnerable server closes stale tabs with a "reconnect now" code and holds
half-open connections; its web app's naive backoff resets on every handshake and reconnects do not
resume. The hardened one closes stale tabs 4002 ("reload"), admits a bounded number of handshakes
per second, caps tabs per agent, closes silent connections by heartbeat, and its web app resumes
with full-jitter backoff. The runbook, the same in both, keeps the upgrade and blocks the accounts
whose outdated builds keep retrying. The postmortem's facts, and what is left out:
gorgias_2023_live_updates_upgrade.md beside this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis

from faults.failpoints import Deploy
from harness.checks.checker import LiveVerdict, check_live
from harness.checks.expect import AtMost, Expect, Measured, figure
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.engine.waiting import WaitTimeout, wait_until
from harness.record.record import Record
from harness.workloads.agents import (
    AgentActivity,
    AgentPopulation,
    PopulationPlan,
    Tab,
    ViewTruth,
    live_http_url,
    read_sequences,
)
from services.common import keys
from services.common.config import Settings
from services.live.client import Banner

NEW_PROTOCOL = "2"
MAX_HANDSHAKES_PER_CLIENT = 1.5
MAX_RECONVERGE_S = 10.0
MAX_HALF_OPEN_S = 30.0
RECONVERGE_WATCH_S = 30.0
SERVING_TIMEOUT_S = 90.0
BLOCK_RECENT_S = 10.0  # an agent whose outdated build connected this recently is still retrying
BLOCK_EFFECT_S = 10.0  # how long the runbook watches stale-build traffic after the block step
MANY_TABS = 5  # an agent with this many tabs or more has more than the hardened cap of 4 admits


@dataclass
class UpgradeTiming(Timing):
    tabs: int = 1000  # simulated browser tabs (websocket connections)
    ramp_per_s: float = 100.0  # tabs logging in per second before the upgrade
    activity_rate: float = 0.5  # typing/presence/availability/assignment actions per second
    late_sleep_after_s: float = 12.0  # after the upgrade, some laptops go to sleep...
    half_open_check_s: float = MAX_HALF_OPEN_S  # ...and this long later the server must have let go
    wake_sleepers_after_s: float = 15.0  # laptops asleep through the upgrade wake this long after it
    after_phase_s: float = 10.0  # latency "after" the upgrade starts this long after it ended


class LiveUpdatesUpgrade(Scenario):
    id = "gorgias-2023-live-updates-upgrade"
    title = "A live-server upgrade meets stale tabs, many tabs and sleeping laptops"
    source = (
        "Gorgias status page, 2023-07-19..08-02: View counts, agent status and general notification issues "
        "(faults/scenarios/gorgias_2023_live_updates_upgrade.md)"
    )
    drill = Drill(
        briefing=(
            "The component that pushes live updates to the helpdesk web app (view counts, typing, presence "
            "and collision, availability, assignment) is being upgraded to a new protocol version. A "
            "thousand agent tabs are connected: some agents have several tabs, some still run last month's "
            "build, some closed their laptop lid. The upgrade rolls out now."
        ),
        symptoms=(
            "connection attempts per second far above the number of connected tabs, and not falling",
            "the live server's connection count saw-tooths; handshakes closed at once (1012) pile up",
            "agents report view counts that do not move and typing/collision indicators that lag",
            "tabs that come back from sleep show old data or the red 'Not connected to live updates' banner",
        ),
        hints=(
            "Group the live server's closes by code: what does a client do after each one?",
            "Which protocol version do reconnecting tabs offer? Is a stale build told to reload or to retry?",
            "Does the client's backoff reset when a handshake succeeds but the session ends at once?",
            "Compare a tab's last sequence per channel with Redis after a reconnect: resumed or skipped?",
            "How long does the server keep a connection whose client stopped reading?",
        ),
        runbook=(
            "Do not roll back blindly: the new version is already serving up-to-date tabs.",
            "Answer stale builds with a do-not-reconnect close (4002) and show them the 'stale connection, "
            "reload' banner; block accounts whose stale tabs keep hammering.",
            "Turn on admission control (handshakes per second, 1013 past it) and a per-agent connection cap.",
            "Ship a client with full-jitter backoff that only resets once a session delivered its snapshot.",
            "Turn on heartbeats so half-open connections of sleeping laptops are closed within 30 s.",
            "Turn on resume so reconnecting tabs replay what they missed; show 'Not connected to live "
            "updates' after 20 s without a connection.",
            "Confirm: attempts per tab back near 1, view counts equal Redis on every tab, no missed updates.",
        ),
    )
    profile_settings = {
        "hardened": {
            "LIVE_STALE_CLIENT_CLOSE": "reload",
            "LIVE_MAX_HANDSHAKES_PER_S": "300",
            "LIVE_MAX_CONNECTIONS_PER_AGENT": "4",
            "LIVE_HEARTBEAT_S": "5",
            "LIVE_HEARTBEAT_TIMEOUT_S": "20",  # plus the 5 s close handshake: gone within 30 s
            "LIVE_RESUME": "on",
            "LIVE_CLIENT_RECONNECT": "full_jitter",
        },
        "vulnerable": {
            "LIVE_STALE_CLIENT_CLOSE": "reconnect",
            "LIVE_MAX_HANDSHAKES_PER_S": "0",
            "LIVE_MAX_CONNECTIONS_PER_AGENT": "0",
            "LIVE_HEARTBEAT_S": "10",
            "LIVE_HEARTBEAT_TIMEOUT_S": "0",
            "LIVE_RESUME": "off",
            "LIVE_CLIENT_RECONNECT": "naive",
        },
    }

    expectations = (
        Expect(
            "live.handshakes_per_tab",
            "handshakes_per_tab",
            AtMost(MAX_HANDSHAKES_PER_CLIENT),
            why="the postmortem's storm: traffic stayed high for days after the release; a restart costs "
            "each tab one handshake, and half again covers those refused once by admission control",
        ),
        Expect(
            "live.missed_updates",
            "missed_updates",
            AtMost(0),
            why="the postmortem: tabs stopped seeing typing, presence and assignment updates; "
            "the product promises an up-to-date tab every update (resume replays what a reconnect missed)",
        ),
        Expect(
            "live.duplicates",
            "duplicate_updates",
            AtMost(0),
            why="the product's promise: an update is applied once "
            "(a resume overlapping live traffic is deduplicated)",
        ),
        Expect(
            "live.out_of_order",
            "out_of_order_updates",
            AtMost(0),
            why="the product's promise: each channel's updates are applied in sequence order",
        ),
        Expect(
            "live.caught_up",
            "channels_behind",
            AtMost(0),
            why="the product's promise: every up-to-date tab reaches the latest sequence of every channel",
        ),
        Expect(
            "live.stale_tabs_told_to_reload",
            "stale_tabs_not_told",
            AtMost(0),
            why="the postmortem: stale builds got the 'stale live notifications connection' banner telling "
            "agents to reload; a stale tab left retrying is silent and hammers the server",
        ),
        Expect(
            "live.views_reconverged",
            "views_reconverge_s",
            AtMost(MAX_RECONVERGE_S),
            why="the postmortem: view counts that do not move were the agents' sign of a dead connection; "
            "within 10 s every awake tab not told to reload shows the counts in Redis",
        ),
        Expect(
            "live.half_open_closed",
            "half_open_held",
            AtMost(0),
            why=f"the postmortem's last days: laptops back from sleep; the server closes a connection "
            f"whose client stopped reading within {MAX_HALF_OPEN_S:g} s (heartbeat)",
        ),
    )
    vulnerable_symptoms = (
        "live.handshakes_per_tab",
        "live.missed_updates",
        "live.stale_tabs_told_to_reload",
        "live.views_reconverged",
        "live.half_open_closed",
    )

    def __init__(self, timing: Timing | None = None) -> None:
        super().__init__(timing)
        self.population: AgentPopulation | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._stop_sampler = asyncio.Event()
        self._upgrade_ended = 0.0

    def default_timing(self) -> UpgradeTiming:
        # Modest rates: every update is fanned out to a thousand tabs on a two-core machine.
        return UpgradeTiming(
            steady_s=8, outage_s=0, after_recovery_s=2, drain_timeout_s=60, message_rate=1, tickets=10
        )

    @property
    def _timing(self) -> UpgradeTiming:
        assert isinstance(self.timing, UpgradeTiming)
        return self.timing

    # -- phases: act and mark; nothing is judged here -------------------------------------------------

    async def prepare(self, run: Run) -> None:
        endpoints = await run.call(run.stack.endpoints)
        await _clear_blocklist(run)
        product = Settings.from_env(run.settings)  # the web app's client is product code
        plan = PopulationPlan(
            tabs=self._timing.tabs,
            ramp_per_s=self._timing.ramp_per_s,
            reconnect=product.live_client_reconnect,
            resume=product.live_resume,
        )
        self.population = population = AgentPopulation(endpoints.live, run.history, plan, run.rng)
        self._stop_sampler = asyncio.Event()
        sink = lambda **fields: run.sample("connections", **fields)  # noqa: E731
        self._sampler = asyncio.create_task(population.sample_every_second(self._stop_sampler, sink))
        started = time.monotonic()
        connected = await population.ramp(timeout=60)
        agents = sorted({tab.agent for tab in population.tabs})
        run.mark(
            "population_ready",
            f"{connected} of {len(population.tabs)} tabs connected in {time.monotonic() - started:.1f} s "
            f"({len(population.stale_tabs)} on a stale build, {len(agents)} agents)",
            tabs=len(population.tabs),
            agents=len(agents),
            stale=len(population.stale_tabs),
            connected=connected,
        )
        activity = AgentActivity(endpoints.api, agents, run.tickets, self._timing.activity_rate, run.rng)
        run.add_load(activity.run)
        sleepers = population.cohort("sleeper")
        population.sleep(sleepers)
        run.timeline.add("note", f"{len(sleepers)} laptops go to sleep with their tabs open")

    async def inject(self, run: Run) -> None:
        population = self._require_population()
        population.begin_phase("during")
        run.mark(
            "upgrade_started", f"live upgrade to protocol {NEW_PROTOCOL} begins", **population.counters()
        )
        upgrade = Deploy(["live"], {"LIVE_PROTOCOL": NEW_PROTOCOL}, previous=run.settings)
        await run.inject(upgrade, f"live upgraded to protocol {NEW_PROTOCOL} (restart: every tab gets 1001)")
        # The upgrade ends when the new server serves protocol 2: the first tab it serves, or its /health,
        # whichever says so first (under a reconnect storm /health may queue behind the handshakes).
        await _wait_serving(population, int(NEW_PROTOCOL), timeout=SERVING_TIMEOUT_S)
        self._upgrade_ended = time.time()
        run.mark(
            "upgrade_ended",
            f"live serves protocol {NEW_PROTOCOL}; {population.connected()} tabs connected",
            connected=population.connected(),
        )

    async def during_outage(self, run: Run) -> None:
        population = self._require_population()
        timing = self._timing
        convergence = asyncio.create_task(self._watch_views_converge(run))
        late_sleepers: list[Tab] = []  # filled when they fall asleep: only tabs with a live session
        steps = [
            (timing.late_sleep_after_s, lambda: self._late_sleep(run, late_sleepers)),
            (timing.after_phase_s, lambda: population.begin_phase("after")),
            (timing.wake_sleepers_after_s, lambda: self._wake(run, population.cohort("sleeper"), "sleepers")),
        ]
        for at, step in sorted(steps, key=lambda s: s[0]):
            await self._sleep_until(self._upgrade_ended + at)
            step()
        await self._sleep_until(self._upgrade_ended + timing.late_sleep_after_s + timing.half_open_check_s)
        held = population.half_open(late_sleepers)
        asleep = sum(1 for tab in late_sleepers if tab.client.asleep)
        run.mark(
            "half_open_checked",
            f"{held} of {asleep} sleeping tabs still hold a connection after {timing.half_open_check_s:g} s",
            seconds=timing.half_open_check_s,
            held=held,
            asleep=asleep,
        )
        run.mark("window_closed", "the upgrade's connection window ends", **population.counters())
        self._wake(run, population.cohort("late_sleeper"), "late sleepers")
        await asyncio.sleep(10)  # woken tabs find their connection closed and reconnect (jitter up to 5 s)
        await convergence
        await self._mark_channel_truth(run)

    async def recover(self, run: Run) -> None:
        """The runbook, the same in both profiles, once the upgrade's effects were measured."""
        population = self._require_population()
        for row in population.roster():
            run.sample("tabs", **row)
        run.mark(
            "update_latency",
            "update latency per phase (by publication time, awake tabs)",
            **{phase: summary.as_dict() for phase, summary in population.latency().items()},
        )
        run.action("upgrade kept: rolling back would disconnect the tabs the new version already serves")
        await self._block_outdated_versions(run, population)
        await population.stop()
        self._stop_sampler.set()
        if self._sampler is not None:
            await self._sampler
        await _clear_blocklist(run)
        run.action("the population logs off; the blocklist is cleared; live goes back to the stack's default")

    async def _block_outdated_versions(self, run: Run, population: AgentPopulation) -> None:
        """The postmortem's step: block the accounts whose outdated builds keep hammering the server.

        The live server lists the agents it saw on an outdated version; those seen in the last
        BLOCK_RECENT_S seconds are still retrying. Their stale tabs are then told to reload (4002)."""
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.get(live_http_url(population.live_url, "/stale-clients"))
            reply.raise_for_status()
            seen = reply.json()["agents"]
        hammering = sorted(a for a, s in seen.items() if s["last_seen_s_ago"] <= BLOCK_RECENT_S)
        before = population.counters()
        if not hammering:
            run.action(
                f"block outdated versions: of {len(seen)} agents seen on an outdated build, none retried "
                f"in the last {BLOCK_RECENT_S:g} s; nothing to block",
                blocked=0,
            )
        else:
            redis = aioredis.from_url(run.stack.endpoints().redis, decode_responses=True)
            try:
                await redis.sadd(keys.LIVE_BLOCKED_AGENTS, *hammering)
            finally:
                await redis.aclose()
            run.action(
                f"block outdated versions: {len(hammering)} agents still retry with an outdated build; "
                "blocked (their stale tabs are told to reload)",
                blocked=len(hammering),
            )
        await asyncio.sleep(BLOCK_EFFECT_S)
        after = population.counters()
        run.mark(
            "block_effect",
            f"stale-build handshakes in the {BLOCK_EFFECT_S:g} s after the block step: "
            f"{after['stale_handshakes'] - before['stale_handshakes']}",
            blocked=len(hammering),
            seconds=BLOCK_EFFECT_S,
            stale_handshakes=after["stale_handshakes"] - before["stale_handshakes"],
        )

    # -- acting on the population ---------------------------------------------------------------------

    def _late_sleep(self, run: Run, chosen: list[Tab]) -> None:
        """Laptops of the late cohort that have a session now go to sleep: the half-open clock starts."""
        population = self._require_population()
        chosen.extend(t for t in population.cohort("late_sleeper") if t.client.banner is Banner.CONNECTED)
        population.sleep(chosen)
        run.timeline.add("note", f"{len(chosen)} more laptops go to sleep after the upgrade")

    def _wake(self, run: Run, tabs: list[Tab], who: str) -> None:
        self._require_population().wake(tabs)
        run.timeline.add("note", f"{len(tabs)} {who} wake up")

    async def _watch_views_converge(self, run: Run) -> None:
        """From the end of the upgrade: when does every tab that shows live data show the true counts?"""
        population = self._require_population()
        client = aioredis.from_url(run.stack.endpoints().redis, decode_responses=True)
        floors: list[int] = []
        seen = {"wrong": 0, "behind": 0, "compared": 0}

        async def every_live_tab_agrees() -> bool:
            truth = await ViewTruth.read(client)
            floors.append(truth.seq)
            floor = floors[-3] if len(floors) >= 3 else 0  # what was published a second ago has arrived
            shown = [tab for tab in population.tabs if tab.should_be_live]
            seen["compared"] = len(shown)
            seen["behind"] = sum(1 for tab in shown if tab.views_seq < floor)
            seen["wrong"] = sum(1 for tab in shown if not truth.agrees(tab))
            return len(floors) >= 3 and seen["behind"] == 0 and seen["wrong"] == 0

        remaining = self._upgrade_ended + RECONVERGE_WATCH_S - time.time()
        try:
            await wait_until(
                every_live_tab_agrees, timeout=remaining, what="view counts equal Redis", interval=0.5
            )
        except WaitTimeout:
            run.mark(
                "views_not_reconverged",
                f"view counts still differ from Redis on {seen['wrong']} tabs ({seen['behind']} behind) "
                f"{RECONVERGE_WATCH_S:g} s after the upgrade",
                **seen,
            )
            return
        finally:
            await client.aclose()
        converged = time.time() - self._upgrade_ended
        run.mark(
            "views_reconverged",
            f"view counts on every live tab equal Redis {converged:.1f} s after the upgrade",
            seconds=round(converged, 2),
            tabs_compared=seen["compared"],
        )
        run.mark_recovered(f"view counts on every live tab equal Redis {converged:.1f} s after the upgrade")

    @figure()
    def stale_handshakes_after_block(self, record: Record) -> Measured | None:
        """Handshakes of stale-build tabs in the seconds after the runbook's block step."""
        effect = record.mark("block_effect")
        if effect is None:
            return None
        data = effect.data
        return Measured(data["stale_handshakes"], f"{data['blocked']} agents blocked, {data['seconds']:g} s")

    async def _mark_channel_truth(self, run: Run) -> None:
        """The true latest sequence of every channel: every up-to-date tab must reach it."""
        client = aioredis.from_url(run.stack.endpoints().redis, decode_responses=True)
        try:
            truth = await read_sequences(client)
        finally:
            await client.aclose()
        await asyncio.sleep(2)  # what was published before `truth` has reached every healthy tab
        run.mark("channel_truth", f"latest sequences in Redis: {truth}", sequences=truth)

    # -- the figures the checks read (pure functions of the record) ------------------------------------

    @figure()
    def handshakes_per_tab(self, record: Record) -> Measured | None:
        """Websocket handshakes over the upgrade (its start to the half-open check), per tab."""
        window = _window(record)
        if window is None:
            return None
        tabs, started, closed = window
        handshakes = closed["handshakes"] - started["handshakes"]
        seconds = _seconds_between(record, "upgrade_started", "window_closed")
        peak = self.peak_handshakes_per_s(record)
        return Measured(
            round(handshakes / max(1, tabs), 2),
            f"{handshakes} handshakes by {tabs} tabs in {seconds:.0f} s; peak {peak}/s",
        )

    @figure("/s")
    def peak_handshakes_per_s(self, record: Record) -> float | None:
        return _peak_rate(record, "handshakes")

    @figure("/s")
    def peak_attempts_per_s(self, record: Record) -> float | None:
        return _peak_rate(record, "attempts")

    @figure()
    def missed_updates(self, record: Record) -> Measured | None:
        """Updates a live up-to-date tab never got: holes in its stream never filled, and typing,
        presence and assignment events a fresh snapshot jumped over (it carries only counts and
        availability, so skipping those is no loss)."""
        live = self._live(record)
        if live is None:
            return None
        return Measured(
            live.missed_in_all,
            f"{live.missed_by_snapshot} skipped by snapshots on event channels, "
            f"{live.missed} in {live.gaps} jumps" + _gap_sample(live),
        )

    # The storm's two causes, apart. Server side: what the server answers a stale build ("reconnect
    # now" 1012 or "reload" 4002), and whether it caps handshakes and tabs. Client side: how the web
    # app's up-to-date tabs come back after the restart (jitter, when the backoff resets).

    @figure()
    def stale_handshakes_per_stale_tab(self, record: Record) -> Measured | None:
        """Server side: handshakes of stale-build tabs over the upgrade, per stale tab (1: told once)."""
        window = _window(record)
        if window is None:
            return None
        stale = int(record.mark("population_ready").data["stale"])  # type: ignore[union-attr]
        _, started, closed = window
        handshakes = closed["stale_handshakes"] - started["stale_handshakes"]
        retries = self.close_codes(record).get("1012", 0)
        return Measured(
            round(handshakes / max(1, stale), 2),
            f"{handshakes} handshakes by {stale} stale tabs; {retries} closes said 'reconnect now' (1012)",
        )

    @figure()
    def current_attempts_per_tab(self, record: Record) -> Measured | None:
        """Client side: connection attempts of up-to-date tabs over the upgrade, per tab."""
        window = _window(record)
        if window is None:
            return None
        tabs, started, closed = window
        current = tabs - int(record.mark("population_ready").data["stale"])  # type: ignore[union-attr]
        attempts = (closed["attempts"] - closed["stale_attempts"]) - (
            started["attempts"] - started["stale_attempts"]
        )
        peak = _peak_rate(record, "attempts", exclude="stale_attempts")
        return Measured(
            round(attempts / max(1, current), 2),
            f"{attempts} attempts by {current} up-to-date tabs; at most {peak} in one second",
        )

    @figure()
    def tabs_beyond_cap(self, record: Record) -> Measured | None:
        """Tabs beyond the 4th of agents with five or more: how each ended (banner) and what they cost."""
        rows = record.stream("tabs")
        if not rows:
            return None
        per_agent = Counter(row["agent"] for row in rows)
        extra: list[dict[str, Any]] = []
        seen: Counter[str] = Counter()
        for row in rows:
            seen[row["agent"]] += 1
            if per_agent[row["agent"]] >= MANY_TABS and seen[row["agent"]] >= MANY_TABS:
                extra.append(row)
        agents = sum(1 for count in per_agent.values() if count >= MANY_TABS)
        banners = dict(Counter(row["banner"] for row in extra))
        handshakes = sum(row["handshakes"] for row in extra)
        return Measured(
            len(extra),
            f"tabs beyond the 4th of {agents} agents: banners {banners}, {handshakes} handshakes",
        )

    @figure()
    def duplicate_updates(self, record: Record) -> int | None:
        live = self._live(record)
        return None if live is None else live.duplicates

    @figure()
    def out_of_order_updates(self, record: Record) -> int | None:
        live = self._live(record)
        return None if live is None else live.out_of_order

    @figure()
    def channels_behind(self, record: Record) -> Measured | None:
        """(tab, channel) pairs whose last sequence is below the channel's in Redis at the end."""
        live = self._live(record)
        if live is None:
            return None
        sample = ", ".join(
            f"{lag.client}/{lag.channel} at {lag.last_seq} of {lag.channel_max}" for lag in live.laggards[:3]
        )
        return Measured(live.laggard_count, sample)

    @figure()
    def stale_tabs_not_told(self, record: Record) -> Measured | None:
        """Tabs on a stale build not told to stop: neither the 'stale connection, reload' banner nor,
        for one the per-agent cap had already stopped before the upgrade, 'too many tabs'."""
        rows = record.stream("tabs")
        if not rows:
            return None
        stale = [row for row in rows if row["stale"]]
        told = {str(Banner.STALE_RELOAD), str(Banner.TOO_MANY_TABS)}
        not_told = sum(1 for row in stale if row["banner"] not in told)
        banners = Counter(row["banner"] for row in stale)
        return Measured(
            not_told, f"{len(stale) - not_told} of {len(stale)} stale tabs told; banners {dict(banners)}"
        )

    @figure("s")
    def views_reconverge_s(self, record: Record) -> Measured | None:
        """Seconds from the upgrade's end until every awake tab not told to reload showed Redis's counts."""
        done = record.mark("views_reconverged")
        if done is not None:
            return Measured(done.data["seconds"], f"{done.data['tabs_compared']} tabs compared")
        never = record.mark("views_not_reconverged")
        detail = f"never within {RECONVERGE_WATCH_S:g} s"
        if never is not None:
            seen = never.data
            detail += f": {seen['wrong']} of {seen['compared']} tabs wrong, {seen['behind']} behind"
        return Measured(None, detail)

    @figure()
    def half_open_held(self, record: Record) -> Measured | None:
        """Sleeping tabs whose connection the server still held at the half-open check."""
        checked = record.mark("half_open_checked")
        if checked is None:
            return None
        data = checked.data
        return Measured(data["held"], f"of {data['asleep']} asleep after {data['seconds']:g} s")

    @figure()
    def close_codes(self, record: Record) -> dict[str, int]:
        """Every close a tab saw, by code."""
        total: Counter[str] = Counter()
        for row in record.stream("tabs"):
            total.update(row["closes"])
        return dict(sorted(total.items()))

    @figure()
    def banners(self, record: Record) -> dict[str, int]:
        return dict(Counter(row["banner"] for row in record.stream("tabs")))

    @figure("s")
    def upgrade_s(self, record: Record) -> float | None:
        started, ended = record.mark_at("upgrade_started"), record.mark_at("upgrade_ended")
        return None if started is None or ended is None else round(ended - started, 1)

    @figure()
    def update_latency_s(self, record: Record) -> dict[str, Any] | None:
        """Update latency (publication to a tab) per phase: before, during, after the upgrade."""
        marked = record.mark("update_latency")
        if marked is None:
            return None
        return {phase: marked.data[phase] for phase in ("before", "during", "after") if phase in marked.data}

    def _live(self, record: Record) -> LiveVerdict | None:
        """Every update the up-to-date tabs applied, judged against the true sequences in Redis."""
        truth, ended = record.mark("channel_truth"), record.mark_at("upgrade_ended")
        if truth is None or ended is None or not record.stream("tabs"):
            return None
        # Up-to-date tabs the server let in: a tab told it has too many siblings knows it is not live.
        current = [
            row["tab"]
            for row in record.stream("tabs")
            if not row["stale"] and row["banner"] != str(Banner.TOO_MANY_TABS)
        ]
        return record.memo(
            "live",
            lambda: check_live(
                record.history, clients=current, channel_max=truth.data["sequences"], reference_at=ended
            ),
        )

    # -- helpers --------------------------------------------------------------------------------------

    def _require_population(self) -> AgentPopulation:
        if self.population is None:
            raise RuntimeError("the agent population was not started (prepare did not run)")
        return self.population

    @staticmethod
    async def _sleep_until(wall: float) -> None:
        delay = wall - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


def _window(record: Record) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    """Tabs, and the population's counters at the upgrade's start and at the window's end."""
    ready, started, closed = (
        record.mark(n) for n in ("population_ready", "upgrade_started", "window_closed")
    )
    if ready is None or started is None or closed is None:
        return None
    return int(ready.data["tabs"]), started.data, closed.data


def _seconds_between(record: Record, first: str, second: str) -> float:
    start, end = record.mark_at(first), record.mark_at(second)
    return 0.0 if start is None or end is None else end - start


def _peak_rate(record: Record, counter: str, exclude: str | None = None) -> float | None:
    """The highest one-second rate of a population counter (less `exclude`) from the upgrade on."""
    since = record.mark_at("upgrade_started")
    rows = [row for row in record.stream("connections") if since is not None and row["at"] >= since - 1]
    if since is None or len(rows) < 2:
        return None

    def value(row: dict[str, Any]) -> int:
        return row[counter] - (row[exclude] if exclude else 0)

    peak = 0.0
    for before, after in itertools.pairwise(rows):
        seconds = after["at"] - before["at"]
        if seconds > 0:
            peak = max(peak, (value(after) - value(before)) / seconds)
    return round(peak, 1)


async def _clear_blocklist(run: Run) -> None:
    """The blocklist lives in Redis: a run starts and ends without one (agents' names recur)."""
    redis = aioredis.from_url(run.stack.endpoints().redis, decode_responses=True)
    try:
        await redis.delete(keys.LIVE_BLOCKED_AGENTS)
    finally:
        await redis.aclose()


async def _wait_serving(population: AgentPopulation, protocol: int, timeout: float) -> None:
    """Until a tab is served in `protocol` or the live server's /health says it speaks it."""
    says_so = asyncio.Event()
    health = asyncio.create_task(_poll_health(population.live_url, protocol, says_so))
    try:
        await wait_until(
            lambda: says_so.is_set() or population.served_in(protocol),
            timeout=timeout,
            what=f"live serving protocol {protocol} after the upgrade",
            interval=0.1,
        )
    finally:
        health.cancel()
        await asyncio.gather(health, return_exceptions=True)


async def _poll_health(live_url: str, protocol: int, says_so: asyncio.Event) -> None:
    url = live_http_url(live_url, "/health")
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if (await client.get(url)).json().get("protocol") == protocol:
                    says_so.set()
                    return
            await asyncio.sleep(0.25)


def _gap_sample(live: LiveVerdict) -> str:
    if not live.gap_sample:
        return ""
    gap = live.gap_sample[0]
    return f", e.g. {gap.client} {gap.channel} {gap.after_seq}->{gap.next_seq}"
