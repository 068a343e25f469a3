"""Proto, June 2023: a release made the conversation list cost grow with the account; the fix's
restart released the pile of requests; chatbots stalled; the release was rolled back.
The postmortem's facts, and what of them this reproduces: proto_2023_gateway_throttling.md.

The release is a deploy that reads an agent's whole conversation list, one Redis round trip per
conversation, whatever page was asked (`CONVERSATIONS_QUERY=per_ticket`, `CONVERSATIONS_PAGINATION=off`):
its cost grows with the account in both profiles. A few large accounts (10,000 conversations each)
poll their list beside many ordinary agents; bot tickets get automated replies throughout. The
runbook deploys "the fix" by restarting the api while the requests are piled up, watches, and
finally rolls the release back.

Every request passes the stack's gateway, which lets 32 requests into the api at once and queues
the rest. Vulnerable: the release's slow listings (no deadline, no limit, no drain; the web app
retrying at once) hold those slots, so ordinary agents queue behind them and the gateway is
throttled for everyone. Hardened: the api bounds the release's work and the web app retries within
a budget, so large accounts get a fast refusal instead of a page, and everyone else is served as
before. Each of its mitigations does work in the run (figure `refusals_by_phase` counts them by
the code each refusal carries): the 1 s deadline ends every large account's read
(`deadline_exceeded`); the cooldown after it refuses that account's next reads before any work
(`cooling_down`, kept in Redis so the fix's restart does not forget it); one read in flight per
agent refuses a poll that overlaps its predecessor (`too_many_requests`); the drain lets the fix's
restart take about a second (`draining`). No deadline makes 10,000 round trips fit, so in both
profiles large accounts get no page while the release runs.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from faults.containers import RestartContainer
from faults.failpoints import Deploy
from harness.checks.expect import AtMost, Equals, Expect, Measured, figure
from harness.checks.latency import LatencySummary, percentile
from harness.engine.runner import LOAD_AGENT, HarnessError, Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.engine.waiting import WaitTimeout, wait_until
from harness.observe.store_pressure import StorePressure, pressure
from harness.record.record import Record
from harness.record.timeline import TimelineEvent
from harness.stack import credentials
from harness.workloads import pollers
from harness.workloads.load import MessageLoad
from harness.workloads.pollers import LARGE, ORDINARY, AgentPollers, PollingAgent
from services.common.config import Settings

ORDINARY_CONVERSATIONS = 20
ORDINARY_POLL_S = 0.5  # often enough that each phase has 100+ polls, so p99 is not just the worst one
LARGE_POLL_S = 1.0
BOT_TICKETS = 8
FIX_WATCH_S = 12.0  # how long the runbook watches after the fix's restart before rolling back
SERVING_TIMEOUT_S = 15.0  # an api that does not answer /health by then is a symptom, not a harness failure
RATE_BUCKET_S = 2

P99_BUDGET_S = 0.300  # ordinary agents' service level
RESTART_RATE_BUDGET = 2.0  # request rate after the restart, as a multiple of the steady rate
BOT_GAP_BUDGET_S = 5.0
STEADY_OK_SHARE = 0.99  # of ordinary polls answered before any fault, or the run cannot judge
LARGE_ANSWER_BUDGET_S = 2.0  # a large account's wait for any answer, a page or a refusal
ORDINARY_OK_AFTER_ROLLBACK = 0.95
ROLLBACK_SETTLE_S = 2.0  # polls sent this soon after the rolled-back api answers may meet the restart
# The release: the whole list, one round trip per conversation, whatever page the client asked for.
RELEASE = {"CONVERSATIONS_QUERY": "per_ticket", "CONVERSATIONS_PAGINATION": "off"}
PHASES = ("steady", "release", "fix_restart", "after_rollback")


@dataclass
class Population:
    """Who polls and posts; the bench makes it bigger. At test size a steady api is far inside its
    service level even on a busy machine, and one large account alone saturates the release."""

    ordinary_agents: int = 10
    large_agents: int = 3
    large_conversations: int = 10_000
    bot_message_rate: float = 2.0


class GatewayThrottling(Scenario):
    id = "proto-2023-gateway-throttling"
    title = "A release throttles the api for large accounts; the fix's restart releases the pile"
    source = (
        "Proto, 2023-06-13: Livechat partial outage and degraded performance "
        "(faults/scenarios/proto_2023_gateway_throttling.md)"
    )
    drill = Drill(
        briefing=(
            "A release went out this morning with new conversation-list features. Agents with very large "
            "accounts say livechat will not load; others say it is slow. A fix is being deployed. Bots "
            "answer customers on some tickets automatically; their replies must keep flowing."
        ),
        symptoms=(
            "conversation-list latency climbs for everyone while a few large accounts poll",
            "large accounts time out (or are refused) loading their conversation list",
            "right after the api restarts, the request rate jumps to several times its steady rate",
            "automated (bot) replies stop for many seconds",
            "Redis command latency and CPU rise during the spike",
        ),
        hints=(
            "Compare latency by account size: does the cost of one request grow with the account?",
            "What does a client do when its request fails: retry at once, or back off within a budget?",
            "What happens to the requests in flight when the api restarts, and to those queued behind them?",
            "Does the api bound its work: a concurrency limit per route, a deadline, a page size?",
        ),
        runbook=(
            "Confirm the symptom by account size (large accounts vs ordinary agents).",
            "Deploy the fix: restart the api (it drains first when draining is on).",
            "Watch the request rate, the shed requests and Redis after the restart.",
            "Roll back the release (redeploy the previous version) and confirm every agent loads livechat.",
        ),
    )
    profile_settings = {
        # One conversation-list read in flight per agent: a poll that overlaps the agent's previous
        # one is refused at once, so a large account never has two doomed reads going.
        "hardened": {"API_CALLER_CONCURRENCY": "1"},
        # No per-route or per-caller limit, no deadline, no drain; the web app retries at once.
        "vulnerable": {
            "WEB_POLL_RETRY": "immediate",
            "API_ROUTE_CONCURRENCY": "0",
            "API_CALLER_CONCURRENCY": "0",
            "API_REQUEST_DEADLINE_S": "0",
            "API_DEADLINE_COOLDOWN_S": "0",
            "API_DRAIN_S": "0",
        },
    }

    expectations = (
        Expect(
            "ordinary_agents.p99",
            "ordinary_p99_ms",
            AtMost(P99_BUDGET_S * 1000),
            why="the product's promise: an ordinary agent's conversation list loads within 300 ms (p99) "
            "in every phase; the postmortem's 'degraded performance' for everyone",
        ),
        Expect(
            "restart.request_rate",
            "restart_rate_ratio",
            AtMost(RESTART_RATE_BUDGET),
            why="the postmortem: the fix's restart released the requests built up behind the throttle "
            "('a second throttle'); a client population that paces itself sends at most twice its "
            "steady rate when it comes back",
        ),
        Expect(
            "chatbot.longest_gap",
            "chatbot_longest_gap_s",
            AtMost(BOT_GAP_BUDGET_S),
            why="the postmortem: chatbots stopped for 10-15 minutes after the fix's deployment; the "
            "product's promise is an automated reply within 5 s",
        ),
        Expect(
            "large_accounts.answered_promptly",
            "large_wait_p99_s",
            AtMost(LARGE_ANSWER_BUDGET_S),
            why="the postmortem: users with many conversations could not open livechat (it hung). No "
            "deadline makes the release's 10,000 round trips fit, so the product promises an answer, "
            "a refusal to retry later if not the page, within its 1 s deadline plus its 0.25 s wait "
            "for a slot, with room for the gateway's hop on a busy machine",
        ),
        Expect(
            "rollback.works",
            "rollback_restored",
            Equals(True),
            why="the postmortem: reverting to the previous version brought every service back",
        ),
    )
    vulnerable_symptoms = (
        "ordinary_agents.p99",
        "restart.request_rate",
        "chatbot.longest_gap",
        "large_accounts.answered_promptly",
    )

    def __init__(self, timing: Timing | None = None) -> None:
        super().__init__(timing)
        self.population = Population()

    def default_timing(self) -> Timing:
        return Timing(
            steady_s=10, outage_s=20, after_recovery_s=8, drain_timeout_s=30, message_rate=4, tickets=8
        )

    # -- steps ------------------------------------------------------------------------------------

    async def prepare(self, run: Run) -> None:
        endpoints = await run.call(run.stack.endpoints)
        # Names new to this run, so each account has exactly its seeded conversations.
        run_tag = f"{int(time.time()) % 100000:05d}"
        size = self.population
        agents = [
            PollingAgent(f"agent{n:02d}-{run_tag}", ORDINARY, ORDINARY_POLL_S)
            for n in range(size.ordinary_agents)
        ]
        agents += [
            PollingAgent(f"bigaccount{n}-{run_tag}", LARGE, LARGE_POLL_S) for n in range(size.large_agents)
        ]
        bot_tickets = await _seed(endpoints.api, agents, size.large_conversations)
        policy = pollers.POLICIES[run.settings.get("WEB_POLL_RETRY", Settings.web_poll_retry)]
        polling = AgentPollers(endpoints.api, agents, policy, random.Random(run.seed * 7919), sink=run.sample)
        bots = MessageLoad(
            endpoints.api,
            credentials.agent_token(LOAD_AGENT),
            run.history,
            random.Random(run.seed * 104729),
            size.bot_message_rate,
            bot_tickets,
            name="bot-messages",
        )
        run.add_load(polling.run)
        run.add_load(bots.run)
        run.add_load(StorePressure(endpoints.redis, run.sample).run)
        run.mark(
            "load",
            f"{size.ordinary_agents} ordinary agents ({ORDINARY_CONVERSATIONS} conversations) poll every "
            f"{ORDINARY_POLL_S:g} s, {size.large_agents} large accounts "
            f"({size.large_conversations} conversations) every {LARGE_POLL_S:g} s; "
            f"client retry policy {policy.name}; {BOT_TICKETS} bot tickets",
            **asdict(size),
            client_retry_policy=policy.name,
            client_timeout_s=policy.timeout_s,
        )

    async def inject(self, run: Run) -> None:
        self._require_a_sound_steady_state(run)
        run.mark("release")
        release = Deploy(["api"], RELEASE, previous=run.settings)
        await run.inject(
            release, "release deployed: the conversation list reads every conversation, one at a time"
        )
        await _wait_serving(run)
        run.mark("release_live")

    def _require_a_sound_steady_state(self, run: Run) -> None:
        """Before any fault, the previous version must already meet the service level: if it does
        not (a machine too busy to host the run), nothing after says anything about the release,
        so the run ends as a harness error instead of a verdict either way."""
        load = _live_mark(run, "load")
        rows = pollers.rows_between(run.samples.get("poll", []), load.at, time.time(), ORDINARY)
        steady = pollers.waits(rows, load.data["client_timeout_s"])
        answered = pollers.ok_share(rows) or 0.0
        if steady.p99 is None or steady.p99 > P99_BUDGET_S or answered < STEADY_OK_SHARE:
            raise HarnessError(
                f"the steady state misses the service level before any fault (ordinary p99 "
                f"{_ms(steady.p99)}, {answered:.0%} answered): the machine is too busy to judge this run"
            )

    async def during_outage(self, run: Run) -> None:
        await run.sleep(self.timing.outage_s)
        since, timeout = _live_mark(run, "release_live").at, _live_mark(run, "load").data["client_timeout_s"]
        rows = run.samples.get("poll", [])
        ordinary = pollers.waits(pollers.rows_between(rows, since, time.time(), ORDINARY), timeout)
        large = pollers.outcomes(pollers.rows_between(rows, since, time.time(), LARGE))
        run.symptom(
            f"release running: ordinary agents p99 {_ms(ordinary.p99)}; large accounts: {dict(large)}"
        )

    async def recover(self, run: Run) -> None:
        run.action("deploy the fix: restart the api while the requests are piled up")
        run.mark("fix")
        await run.inject(RestartContainer("api"), "the fix deployed: api restarted")
        run.mark("fix_restarted", "the new api process is starting")
        await _wait_serving(run)
        run.mark("fix_live")
        await run.sleep(FIX_WATCH_S)
        run.action("roll back the release")
        run.mark("rollback")
        await run.revert_faults()
        await _wait_serving(run)
        _, deployed = await run.call(run.stack.exec, "api", ["printenv", "CONVERSATIONS_QUERY"])
        run.mark(
            "rollback_live", f"the api runs CONVERSATIONS_QUERY={deployed.strip()}", deployed=deployed.strip()
        )
        run.mark_recovered(f"release rolled back (api runs CONVERSATIONS_QUERY={deployed.strip()})")

    # -- the figures the checks read (pure functions of the record) --------------------------------

    @figure("ms")
    def ordinary_p99_ms(self, record: Record) -> Measured:
        """The worst phase's p99 of what ordinary agents waited (time-outs count in full)."""
        by_phase = {phase: _ordinary_waits(record, *window).p99 for phase, window in _phases(record).items()}
        worst = max((p99 for p99 in by_phase.values() if p99 is not None), default=None)
        detail = ", ".join(f"{phase} {_ms(p99)}" for phase, p99 in by_phase.items())
        return Measured(None if worst is None else round(worst * 1000, 1), detail)

    @figure("x")
    def restart_rate_ratio(self, record: Record) -> Measured:
        """The busiest 2 s of requests from the fix's restart to the rollback, per steady second."""
        steady, peak = self.steady_rate_per_s(record), self.restart_peak_rate_per_s(record)
        ratio = peak / steady if steady else None
        return Measured(
            None if ratio is None else round(ratio, 2), f"{peak:.1f}/s peak vs {steady:.1f}/s steady"
        )

    @figure("requests/s")
    def steady_rate_per_s(self, record: Record) -> float:
        """Requests per second before the release; the first poll interval is skipped (agents start
        polling at random offsets within it)."""
        start, end = _at(record, "load") + LARGE_POLL_S, _at(record, "release")
        counts = pollers.sent_per_second(_polls(record), start, end)
        return round(sum(counts) / len(counts), 2) if counts else 0.0

    @figure("requests/s")
    def restart_peak_rate_per_s(self, record: Record) -> float:
        return _peak_rate(record, _at(record, "fix"), _at(record, "rollback"))

    @figure("requests/s")
    def rollback_peak_rate_per_s(self, record: Record) -> float:
        return _peak_rate(record, _at(record, "rollback"), _at(record, "rollback_live") + 5)

    @figure("s")
    def chatbot_longest_gap_s(self, record: Record) -> Measured:
        """The longest stretch without an automated reply from the release to the rollback. The fix's
        restart counts in full: how long the old process takes to stop is the pile's doing
        (requests in flight hold it until Docker kills it) unless it drains within a bound."""
        gap, replies = _longest_bot_gap(record, _at(record, "release_live"), _at(record, "rollback"))
        restart = _at(record, "fix_restarted") - _at(record, "fix")
        return Measured(
            round(gap, 2),
            f"{replies} replies from release to rollback; the fix's restart took {restart:.1f} s",
        )

    @figure("s")
    def chatbot_longest_gap_whole_run_s(self, record: Record) -> float:
        return round(_longest_bot_gap(record, _at(record, "load"), _end(record))[0], 2)

    @figure("s")
    def large_wait_p99_s(self, record: Record) -> Measured:
        """p99 of what large accounts waited for an answer (any HTTP status) while the release ran;
        a request that got none (a time-out, a reset) counts as never answered."""
        rows = pollers.rows_between(_polls(record), _at(record, "release_live"), _at(record, "fix"), LARGE)
        waits = sorted(ms / 1000 for row in rows for ms in row["ms"])
        unanswered = sum(n for row in rows for outcome, n in row["outcomes"].items() if not outcome.isdigit())
        everything = waits + [math.inf] * unanswered
        if not everything:
            return Measured(None, "no request from a large account while the release ran")
        p99 = percentile(everything, 99)
        detail = f"{len(waits)} answered ({dict(pollers.outcomes(rows))}), {unanswered} never"
        return Measured(round(p99, 3) if math.isfinite(p99) else p99, detail)

    @figure("%")
    def large_first_page_share(self, record: Record) -> Measured:
        """The least-served large account's share of polls answered with a page while the release
        runs: none is expected in either profile (the release's cost is the account's size)."""
        shares = _large_shares(record, _at(record, "release_live"), _at(record, "fix"))
        worst = None if None in shares.values() else min(shares.values(), default=None)  # type: ignore[type-var]
        detail = ", ".join(f"{name} {_pct(share)}" for name, share in shares.items())
        return Measured(None if worst is None else round(worst * 100, 1), detail)

    @figure()
    def rollback_restored(self, record: Record) -> Measured:
        """The previous version runs again and every agent is served: each large account gets pages,
        and ordinary agents nearly every poll, from shortly after the rollback to the run's end."""
        deployed = (record.mark("rollback_live") or _missing("rollback_live")).data.get("deployed", "")
        after = (_at(record, "rollback_live") + ROLLBACK_SETTLE_S, _end(record))
        large = _large_shares(record, *after)
        ordinary = pollers.ok_share(pollers.rows_between(_polls(record), *after, ORDINARY))
        restored = (
            deployed == "batched"
            and all(share for share in large.values())
            and ordinary is not None
            and ordinary >= ORDINARY_OK_AFTER_ROLLBACK
        )
        detail = (
            f"api runs {deployed or '?'}; large accounts answered "
            f"{', '.join(_pct(share) for share in large.values())}; ordinary {_pct(ordinary)}"
        )
        return Measured(restored, detail)

    @figure("s")
    def api_restart_s(self, record: Record) -> float:
        """How long the fix's restart took: stopping the old process and starting the new one."""
        return round(_at(record, "fix_restarted") - _at(record, "fix"), 2)

    @figure()
    def not_ok_by_size(self, record: Record) -> dict[str, dict[str, int]]:
        """Every attempt that did not get a page, by account size and outcome, over the whole run."""
        window = (_at(record, "load"), _end(record))
        return {
            size: {
                k: v
                for k, v in pollers.outcomes(pollers.rows_between(_polls(record), *window, size)).items()
                if k != "200"
            }
            for size in (ORDINARY, LARGE)
        }

    @figure()
    def refusals_by_phase(self, record: Record) -> dict[str, dict[str, dict[str, int]]]:
        """Who said no, phase by phase and by account size: each api refusal's code names the
        mitigation at work (`deadline_exceeded`, `cooling_down`, `too_many_requests`, `overloaded`,
        `draining`); `api_unavailable` is the gateway with no api process to send to."""
        return {
            phase: {
                size: dict(pollers.refusals(pollers.rows_between(_polls(record), *window, size)))
                for size in (ORDINARY, LARGE)
            }
            for phase, window in _phases(record).items()
        }

    @figure()
    def latency_by_phase_ms(self, record: Record) -> dict[str, dict[str, float | None]]:
        """p99 of what each account size waited, phase by phase."""
        timeout = _client_timeout(record)
        return {
            phase: {
                size: _ms_value(
                    pollers.waits(pollers.rows_between(_polls(record), *window, size), timeout).p99
                )
                for size in (ORDINARY, LARGE)
            }
            for phase, window in _phases(record).items()
        }

    @figure()
    def store_load_by_phase(self, record: Record) -> dict[str, dict[str, float | int | None]]:
        """Redis under the herd (PING round trips, CPU, commands), phase by phase: recorded to show
        the postmortem's database spike, not judged (our store is not theirs)."""
        samples = record.stream("store")
        return {phase: pressure(samples, *window) for phase, window in _phases(record).items()}


# -- reading the record ------------------------------------------------------------------------------


def _missing(mark: str) -> Any:
    raise LookupError(f"the run never reached the mark {mark!r}")


def _at(record: Record, mark: str) -> float:
    at = record.mark_at(mark)
    return at if at is not None else _missing(mark)


def _end(record: Record) -> float:
    """When the load stopped: the rollback plus the time the load kept flowing after the runbook."""
    return _at(record, "rollback_live") + float(record.meta.get("timing", {}).get("after_recovery_s", 0.0))


def _phases(record: Record) -> dict[str, tuple[float, float]]:
    def compute() -> dict[str, tuple[float, float]]:
        edges = [_at(record, m) for m in ("load", "release", "fix", "rollback")] + [_end(record)]
        return dict(zip(PHASES, itertools.pairwise(edges), strict=True))

    return record.memo("phases", compute)


def _polls(record: Record) -> list[pollers.Row]:
    return record.stream("poll")


def _client_timeout(record: Record) -> float:
    return float((record.mark("load") or _missing("load")).data["client_timeout_s"])


def _ordinary_waits(record: Record, start: float, end: float) -> LatencySummary:
    return pollers.waits(pollers.rows_between(_polls(record), start, end, ORDINARY), _client_timeout(record))


def _peak_rate(record: Record, start: float, end: float) -> float:
    counts = pollers.sent_per_second(_polls(record), start, end)
    buckets = [sum(counts[i : i + RATE_BUCKET_S]) for i in range(0, len(counts), RATE_BUCKET_S)]
    return max(buckets, default=0) / RATE_BUCKET_S


def _large_shares(record: Record, start: float, end: float) -> dict[str, float | None]:
    rows = pollers.rows_between(_polls(record), start, end, LARGE)
    accounts = sorted(
        {
            row["account"]
            for row in pollers.rows_between(_polls(record), _at(record, "load"), _end(record), LARGE)
        }
    )
    return {name: pollers.ok_share([r for r in rows if r["account"] == name]) for name in accounts}


def _longest_bot_gap(record: Record, start: float, end: float) -> tuple[float, int]:
    """The longest stretch of [start, end) with no automated reply, and the replies in it."""
    replies = sorted(at for at in record.history.observation_columns("bot_reply").at if start <= at < end)
    edges = [start, *replies, end]
    return max(b - a for a, b in itertools.pairwise(edges)), len(replies)


def _live_mark(run: Run, name: str) -> TimelineEvent:
    """A mark the live run passed (for the hooks' own decisions, not for checks)."""
    return next(e for e in run.timeline.events("mark") if e.data.get("mark") == name)


async def _seed(api_url: str, agents: list[PollingAgent], large_conversations: int) -> list[int]:
    """Each agent's conversations (server-side seeding: fast), and the bot tickets; returns their ids."""
    admin = {"Authorization": f"Bearer {credentials.admin_token()}"}
    agent = {"Authorization": f"Bearer {credentials.agent_token(LOAD_AGENT)}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        for polling in agents:
            count = large_conversations if polling.size == LARGE else ORDINARY_CONVERSATIONS
            reply = await client.post(
                "/views/livechat/seed", json={"tickets": count, "assignee": polling.name}, headers=admin
            )
            if reply.status_code != 201:
                raise HarnessError(f"seeding {polling.name}: HTTP {reply.status_code} {reply.text[:200]}")
        bot_tickets = []
        for n in range(BOT_TICKETS):
            reply = await client.post(
                "/tickets",
                json={"subject": f"bot {n}", "customer": f"bot{n}@example.test", "bot": True},
                headers=agent,
            )
            if reply.status_code != 201:
                raise HarnessError(f"creating a bot ticket: HTTP {reply.status_code} {reply.text[:200]}")
            bot_tickets.append(int(reply.json()["id"]))
        return bot_tickets


async def _wait_serving(run: Run, timeout: float = SERVING_TIMEOUT_S) -> None:
    """Until the api answers /health again after a deploy or restart, or `timeout`: a throttled api
    may not answer at all, and that is the symptom, not a harness failure."""
    api = (await run.call(run.stack.endpoints)).api
    async with httpx.AsyncClient(timeout=1.0) as client:

        async def answers() -> bool:
            try:
                return (await client.get(f"{api}/health")).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            await wait_until(answers, timeout=timeout, what="the api answers /health", interval=0.1)
        except WaitTimeout:
            run.symptom(f"the api does not answer /health {timeout:.0f} s after its restart")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _ms_value(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"
