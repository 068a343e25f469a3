"""Gorgias, July 2023: an upgrade of the live-update server brought a reconnect storm and silent tabs.

The root cause, replayed: a rolling upgrade of `live` to protocol version 2 while a realistic population
is connected — agents with one to four tabs, a share of tabs on a stale build that speaks only version 1,
laptops asleep (connections that stop reading without closing). The vulnerable server accepts stale tabs
and closes them with a "reconnect now" code, their naive backoff resets on every handshake, reconnects
do not resume, and half-open connections are held; the hardened one negotiates, closes stale tabs 4002
("reload"), admits a bounded number of handshakes per second, caps tabs per agent, closes silent
connections by heartbeat, and resumes from the last sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis

from faults.failpoints import Deploy
from harness.checks.check import Check
from harness.checks.checker import LiveVerdict, check_live
from harness.engine.runner import HarnessError, Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.workloads.agents import AgentActivity, AgentPopulation, PopulationPlan, ViewTruth, read_sequences
from services.live.client import Banner

NEW_PROTOCOL = "2"
MAX_HANDSHAKES_PER_CLIENT = 1.5
MAX_RECONVERGE_S = 10.0
MAX_HALF_OPEN_S = 30.0


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
        "Gorgias status page, 2023-07-19..08-02: View counts, agent status and general notification issues"
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
        },
        "vulnerable": {
            "LIVE_STALE_CLIENT_CLOSE": "reconnect",
            "LIVE_MAX_HANDSHAKES_PER_S": "0",
            "LIVE_MAX_CONNECTIONS_PER_AGENT": "0",
            "LIVE_HEARTBEAT_S": "10",
            "LIVE_HEARTBEAT_TIMEOUT_S": "0",
            "LIVE_RESUME": "off",
        },
    }

    def __init__(self, timing: Timing | None = None) -> None:
        super().__init__(timing)
        self.population: AgentPopulation | None = None
        self.figures: dict[str, Any] = {}
        self._live: LiveVerdict | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._stop_sampler = asyncio.Event()
        self._upgrade_started = 0.0
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

    # -- phases --------------------------------------------------------------------------------------

    async def prepare(self, run: Run) -> None:
        endpoints = await run.call(run.stack.endpoints)
        vulnerable = run.profile == "vulnerable"
        plan = PopulationPlan(
            tabs=self._timing.tabs,
            ramp_per_s=self._timing.ramp_per_s,
            naive_reconnect=vulnerable,
            resume=not vulnerable,
        )
        self.population = population = AgentPopulation(endpoints.live, run.history, plan, run.rng)
        self._stop_sampler = asyncio.Event()
        self._sampler = asyncio.create_task(population.sample_every_second(self._stop_sampler))
        started = time.monotonic()
        connected = await population.ramp(timeout=60)
        run.timeline.add(
            "note",
            f"{connected} of {len(population.tabs)} tabs connected in {time.monotonic() - started:.1f} s "
            f"({len(population.stale_tabs)} on a stale build, {len({t.agent for t in population.tabs})} agents)",  # noqa: E501
        )
        agents = sorted({tab.agent for tab in population.tabs})
        activity = AgentActivity(endpoints.api, agents, run.tickets, self._timing.activity_rate, run.rng)
        self.figures["activity_statuses"] = activity.statuses
        run.add_load(activity.run)
        sleepers = population.cohort("sleeper")
        population.sleep(sleepers)
        run.timeline.add("note", f"{len(sleepers)} laptops go to sleep with their tabs open")

    async def inject(self, run: Run) -> None:
        population = self._require_population()
        population.begin_phase("during")
        self.figures["handshakes_before_upgrade"] = population.handshakes()
        self.figures["attempts_before_upgrade"] = population.attempts()
        self._upgrade_started = time.time()
        upgrade = Deploy(["live"], {"LIVE_PROTOCOL": NEW_PROTOCOL}, previous=self.settings(run.profile))
        await run.inject(upgrade, f"live upgraded to protocol {NEW_PROTOCOL} (restart: every tab gets 1001)")
        # The upgrade ends when the new server serves protocol 2: the first tab it serves, or its /health,
        # whichever says so first (under a reconnect storm /health may queue behind the handshakes).
        await _wait_serving(population, int(NEW_PROTOCOL), timeout=90)
        self._upgrade_ended = time.time()
        run.symptom(
            f"upgrade done in {self._upgrade_ended - self._upgrade_started:.1f} s; "
            f"{population.connected()} tabs connected"
        )

    async def during_outage(self, run: Run) -> None:
        population = self._require_population()
        timing = self._timing
        convergence = asyncio.create_task(self._watch_views_converge(run))
        late_sleepers: list[Any] = []  # filled when they fall asleep: only tabs with a live session
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
        self.figures["half_open_after_s"] = {
            "seconds": timing.half_open_check_s,
            "held": held,
            "asleep": asleep,
        }
        run.symptom(
            f"{held} of {asleep} sleeping tabs still hold a connection after {timing.half_open_check_s:g} s"
        )
        self._close_window(population)
        self._wake(run, population.cohort("late_sleeper"), "late sleepers")
        await asyncio.sleep(10)  # woken tabs find their connection closed and reconnect (jitter up to 5 s)
        self.figures["views"] = await convergence
        await self._judge_live(run)

    async def recover(self, run: Run) -> None:
        population = self._require_population()
        self.figures["banners"] = population.banners()
        self.figures["stale_banners"] = population.banners(population.stale_tabs)
        self.figures["close_codes"] = population.close_codes()
        await population.stop()
        self._stop_sampler.set()
        if self._sampler is not None:
            await self._sampler
        self._summarize(run)
        run.action("upgrade kept; the population logs off and live is redeployed at the stack's default")

    # -- measurements ---------------------------------------------------------------------------------

    def _late_sleep(self, run: Run, chosen: list[Any]) -> None:
        """Laptops of the late cohort that have a session now go to sleep: the half-open clock starts."""
        population = self._require_population()
        chosen.extend(t for t in population.cohort("late_sleeper") if t.client.banner is Banner.CONNECTED)
        population.sleep(chosen)
        run.timeline.add("note", f"{len(chosen)} more laptops go to sleep after the upgrade")

    def _wake(self, run: Run, tabs: list[Any], who: str) -> None:
        self._require_population().wake(tabs)
        run.timeline.add("note", f"{len(tabs)} {who} wake up")

    def _close_window(self, population: AgentPopulation) -> None:
        """Connection attempts that reached the server over the upgrade, per tab."""
        self.figures["window_s"] = round(time.time() - self._upgrade_started, 1)
        self.figures["handshakes_during_upgrade"] = (
            population.handshakes() - self.figures["handshakes_before_upgrade"]
        )
        self.figures["attempts_during_upgrade"] = (
            population.attempts() - self.figures["attempts_before_upgrade"]
        )

    async def _watch_views_converge(self, run: Run) -> dict[str, Any]:
        """From the end of the upgrade: when does every tab that shows live data show the true counts?"""
        population = self._require_population()
        client = aioredis.from_url(run.stack.endpoints().redis, decode_responses=True)
        deadline = self._upgrade_ended + 30
        floors: list[int] = []
        wrong = behind = 0
        try:
            while time.time() < deadline:
                truth = await ViewTruth.read(client)
                floors.append(truth.seq)
                floor = floors[-3] if len(floors) >= 3 else 0  # what was published a second ago has arrived
                shown = [tab for tab in population.tabs if tab.should_be_live]
                behind = sum(1 for tab in shown if tab.views_seq < floor)
                wrong = sum(1 for tab in shown if not truth.agrees(tab))
                if len(floors) >= 3 and behind == 0 and wrong == 0:
                    converged = time.time() - self._upgrade_ended
                    run.mark_recovered(
                        f"view counts on every live tab equal Redis {converged:.1f} s after the upgrade"
                    )
                    return {"reconverge_s": round(converged, 2), "tabs_compared": len(shown)}
                await asyncio.sleep(0.5)
        finally:
            await client.aclose()
        run.symptom(
            f"view counts still differ from Redis on {wrong} tabs ({behind} behind) 30 s after the upgrade"
        )
        return {"reconverge_s": None, "wrong_tabs": wrong, "behind_tabs": behind}

    async def _judge_live(self, run: Run) -> None:
        """Every update for up-to-date tabs, judged against the true sequences in Redis."""
        population = self._require_population()
        client = aioredis.from_url(run.stack.endpoints().redis, decode_responses=True)
        try:
            truth = await read_sequences(client)
        finally:
            await client.aclose()
        await asyncio.sleep(2)  # what was published before `truth` has reached every healthy tab
        self._live = check_live(
            run.history,
            clients=[tab.name for tab in population.current_tabs],
            channel_max=truth,
            reference_at=self._upgrade_ended,
        )

    def _summarize(self, run: Run) -> None:
        population = self._require_population()
        figures = self.figures
        tabs = len(population.tabs)
        latency = {phase: summary.as_dict() for phase, summary in population.latency().items()}
        live = self._live.details() if self._live else {}
        live.pop("samples", None)
        run.metrics["live_upgrade"] = {
            "tabs": tabs,
            "agents": len({tab.agent for tab in population.tabs}),
            "stale_tabs": len(population.stale_tabs),
            "upgrade_s": round(self._upgrade_ended - self._upgrade_started, 1),
            "window_s": figures.get("window_s"),
            "attempts_during_upgrade": figures.get("attempts_during_upgrade"),
            "handshakes_during_upgrade": figures.get("handshakes_during_upgrade"),
            "handshakes_per_tab": round(figures.get("handshakes_during_upgrade", 0) / max(1, tabs), 2),
            "peak_handshakes_per_s": population.peak_handshakes_per_s(since=self._upgrade_started),
            "peak_attempts_per_s": population.peak_attempts_per_s(since=self._upgrade_started),
            "close_codes": figures.get("close_codes"),
            "update_latency_s": latency,
            "live_updates": live,
            "client_counters": population.counter_totals(population.current_tabs),
            "views": figures.get("views"),
            "banners": figures.get("banners"),
            "stale_banners": figures.get("stale_banners"),
            "half_open": figures.get("half_open_after_s"),
            "activity_statuses": {str(k): v for k, v in figures.get("activity_statuses", {}).items()},
            "connections_over_time": [
                {
                    "t": round(s.t - self._upgrade_started, 1),
                    "connected": s.connected,
                    "server": s.server_connections,
                    "handshakes": s.handshakes,
                    "attempts": s.attempts,
                }
                for s in population.samples
            ],
        }

    # -- verdict --------------------------------------------------------------------------------------

    def checks(self, run: Run) -> list[Check]:
        metrics = run.metrics.get("live_upgrade")
        if metrics is None or self._live is None:
            return [Check("live.measured", False, "the population was not measured", "a full run")]
        per_tab = metrics["handshakes_per_tab"]
        views = metrics["views"] or {}
        reconverge = views.get("reconverge_s")
        stale = metrics["stale_tabs"]
        in_banner = (metrics["stale_banners"] or {}).get(str(Banner.STALE_RELOAD), 0)
        half_open = metrics["half_open"] or {}
        live = self._live
        return [
            Check(
                "live.handshakes_per_tab",
                per_tab <= MAX_HANDSHAKES_PER_CLIENT,
                f"{per_tab:.2f} ({metrics['handshakes_during_upgrade']} handshakes, {metrics['tabs']} tabs, "
                f"{metrics['window_s']} s; peak {metrics['peak_handshakes_per_s']}/s)",
                f"<= {MAX_HANDSHAKES_PER_CLIENT:g} per tab over the upgrade",
            ),
            Check(
                "live.missed_updates",
                live.gaps == 0,
                f"{live.missed} updates skipped in {live.gaps} jumps" + _gap_sample(live),
                "0 for up-to-date tabs",
            ),
            Check("live.duplicates", live.duplicates == 0, str(live.duplicates), "0 updates applied twice"),
            Check("live.out_of_order", live.out_of_order == 0, str(live.out_of_order), "0"),
            Check(
                "live.caught_up",
                live.laggard_count == 0,
                f"{live.laggard_count} tab channels behind Redis",
                "every up-to-date tab at the latest sequence of every channel",
            ),
            Check(
                "live.stale_tabs_told_to_reload",
                in_banner == stale,
                f"{in_banner} of {stale} stale tabs show it; banners {metrics['stale_banners']}",
                "every stale tab shows 'stale live notifications connection, reload'",
            ),
            Check(
                "live.views_reconverged",
                reconverge is not None and reconverge <= MAX_RECONVERGE_S,
                "never within 30 s" if reconverge is None else f"{reconverge:.1f} s",
                f"<= {MAX_RECONVERGE_S:g} s after the upgrade, on each awake tab not told to reload",
            ),
            Check(
                "live.half_open_closed",
                half_open.get("held", 1) == 0,
                f"{half_open.get('held')} of {half_open.get('asleep')} sleeping tabs still connected",
                f"the server closes connections that stopped reading within {MAX_HALF_OPEN_S:g} s",
            ),
        ]

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


async def _wait_serving(population: AgentPopulation, protocol: int, timeout: float) -> None:
    """Until a tab is served in `protocol` or the live server's /health says it speaks it."""
    says_so = asyncio.Event()
    health = asyncio.create_task(_poll_health(population.live_url, protocol, says_so))
    deadline = time.monotonic() + timeout
    try:
        while not (says_so.is_set() or population.served_in(protocol)):
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"live did not serve protocol {protocol} within {timeout:.0f} s of the upgrade"
                )
            await asyncio.sleep(0.1)
    finally:
        health.cancel()
        await asyncio.gather(health, return_exceptions=True)


async def _poll_health(live_url: str, protocol: int, says_so: asyncio.Event) -> None:
    url = live_url.replace("ws://", "http://", 1).rstrip("/").removesuffix("/live") + "/health"
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
