"""Proto, June 2023: a release made the conversation list cost grow with the account; the fix's
restart released the pile of requests; chatbots stalled; the release was rolled back.

The release is a deploy (`CONVERSATIONS_QUERY=per_ticket`: one Redis round trip per conversation).
A few large accounts (10,000 conversations each) poll their list beside many ordinary agents; bot
tickets get automated replies throughout. The runbook deploys "the fix" by restarting the api while
the requests are piled up, watches, and finally rolls the release back.

Every request passes the stack's gateway, which lets 32 requests into the api at once and queues
the rest. Vulnerable: the release's slow listings (no deadline, no limit, no pagination, retried
at once) hold those slots, so ordinary agents queue behind them and the gateway is throttled for
everyone. Hardened: the api pages, limits and sheds, so the slots free up within milliseconds.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from faults.containers import RestartContainer
from faults.failpoints import Deploy
from harness.checks.check import Check
from harness.engine.runner import LOAD_AGENT, HarnessError, Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.observe.store_pressure import StorePressure
from harness.stack import credentials
from harness.workloads import pollers
from harness.workloads.load import MessageLoad
from harness.workloads.pollers import BUDGETED, IMMEDIATE, LARGE, ORDINARY, AgentPollers, PollingAgent

ORDINARY_CONVERSATIONS = 20
ORDINARY_POLL_S = 0.5  # often enough that each phase has 100+ polls, so p99 is not just the worst one
LARGE_POLL_S = 1.0
BOT_TICKETS = 8
FIX_WATCH_S = 12.0  # how long the runbook watches after the fix's restart before rolling back
RATE_BUCKET_S = 2.0

P99_BUDGET_S = 0.300  # ordinary agents' service level
RESTART_RATE_BUDGET = 2.0  # request rate after the restart, as a multiple of the steady rate
BOT_GAP_BUDGET_S = 5.0
STEADY_OK_SHARE = 0.99  # of ordinary polls answered before any fault, or the run cannot judge
LARGE_OK_SHARE = 0.8  # of large accounts' polls answered while the release runs


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
        "(incidents/proto-2023-06-gateway-throttling.txt)"
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
        "hardened": {},
        # No per-route limit, no deadline, no drain; the release ignores pagination.
        "vulnerable": {
            "CONVERSATIONS_PAGINATION": "off",
            "API_ROUTE_CONCURRENCY": "0",
            "API_CALLER_CONCURRENCY": "0",
            "API_REQUEST_DEADLINE_S": "0",
            "API_DRAIN_S": "0",
        },
    }

    def __init__(self, timing: Timing | None = None) -> None:
        super().__init__(timing)
        self.population = Population()
        self._pollers: AgentPollers | None = None
        self._pressure: StorePressure | None = None
        self._marks: dict[str, float] = {}
        self._deployed_after_rollback = ""

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
        policy = BUDGETED if run.profile == "hardened" else IMMEDIATE
        self._pollers = AgentPollers(endpoints.api, agents, policy, random.Random(run.seed * 7919))
        self._pressure = StorePressure(endpoints.redis)
        bots = MessageLoad(
            endpoints.api,
            credentials.agent_token(LOAD_AGENT),
            run.history,
            random.Random(run.seed * 104729),
            size.bot_message_rate,
            bot_tickets,
            name="bot-messages",
        )
        run.add_load(self._pollers.run)
        run.add_load(bots.run)
        run.add_load(self._pressure.run)
        self._marks["load"] = time.time()
        run.timeline.add(
            "note",
            f"{size.ordinary_agents} ordinary agents ({ORDINARY_CONVERSATIONS} conversations) poll every "
            f"{ORDINARY_POLL_S:g} s, {size.large_agents} large accounts "
            f"({size.large_conversations} conversations) every {LARGE_POLL_S:g} s; "
            f"client retry policy {policy.name}; {BOT_TICKETS} bot tickets",
        )

    async def inject(self, run: Run) -> None:
        self._require_a_sound_steady_state()
        self._marks["release"] = time.time()
        release = Deploy(["api"], {"CONVERSATIONS_QUERY": "per_ticket"}, previous=self.settings(run.profile))
        await run.inject(release, "release deployed: conversation list reads each conversation on its own")
        await _wait_serving(run)
        self._marks["release_live"] = time.time()

    def _require_a_sound_steady_state(self) -> None:
        """Before any fault, the previous version must already meet the service level: if it does
        not (a machine too busy to host the run), nothing after says anything about the release,
        so the run ends as a harness error instead of a verdict either way."""
        assert self._pollers is not None
        since, now = self._marks["load"], time.time()
        steady = pollers.latency(self._pollers.attempts, ORDINARY, since, now)
        polls = [a for a in self._pollers.attempts if a.size == ORDINARY and since <= a.at < now]
        answered = sum(a.ok for a in polls) / len(polls) if polls else 0.0
        if steady.p99 is None or steady.p99 > P99_BUDGET_S or answered < STEADY_OK_SHARE:
            raise HarnessError(
                f"the steady state misses the service level before any fault (ordinary p99 "
                f"{_ms(steady.p99)}, {answered:.0%} answered): the machine is too busy to judge this run"
            )

    async def during_outage(self, run: Run) -> None:
        await run.sleep(self.timing.outage_s)
        assert self._pollers is not None
        now, since = time.time(), self._marks["release_live"]
        ordinary = pollers.latency(self._pollers.attempts, ORDINARY, since, now)
        large = pollers.outcomes(self._pollers.attempts, since, now, LARGE)
        run.symptom(
            f"release running: ordinary agents p99 {_ms(ordinary.p99)}; large accounts: {dict(large)}"
        )

    async def recover(self, run: Run) -> None:
        run.action("deploy the fix: restart the api while the requests are piled up")
        self._marks["fix"] = time.time()
        await run.inject(RestartContainer("api"), "the fix deployed: api restarted")
        self._marks["fix_restarted"] = time.time()  # the new process is starting
        await _wait_serving(run)
        self._marks["fix_live"] = time.time()
        await run.sleep(FIX_WATCH_S)
        assert self._pollers is not None
        steady, peak = self._steady_rate(), self._peak_rate(self._marks["fix"], time.time())
        run.symptom(f"after the restart: {peak:.1f} requests/s at peak against {steady:.1f} steady")
        run.action("roll back the release")
        self._marks["rollback"] = time.time()
        await run.revert_faults()
        await _wait_serving(run)
        self._marks["rollback_live"] = time.time()
        _, deployed = await run.call(run.stack.exec, "api", ["printenv", "CONVERSATIONS_QUERY"])
        self._deployed_after_rollback = deployed.strip()
        run.mark_recovered(
            f"release rolled back (api runs CONVERSATIONS_QUERY={self._deployed_after_rollback})"
        )

    # -- checks -----------------------------------------------------------------------------------

    def checks(self, run: Run) -> list[Check]:
        if self._pollers is None or "rollback_live" not in self._marks:
            return [Check("gateway.runbook", False, "the runbook did not finish", "release, fix, rollback")]
        marks, attempts = self._marks, self._pollers.attempts
        end = marks["rollback_live"] + self.timing.after_recovery_s
        phases = {
            "steady": (marks["load"], marks["release"]),
            "release": (marks["release"], marks["fix"]),
            "fix_restart": (marks["fix"], marks["rollback"]),
            "after_rollback": (marks["rollback"], end),
        }
        by_phase = {
            phase: {size: pollers.latency(attempts, size, *window).as_dict() for size in (ORDINARY, LARGE)}
            for phase, window in phases.items()
        }
        worst = max((row[ORDINARY]["p99"] or 0.0) for row in by_phase.values())
        steady = self._steady_rate()
        restart_peak = self._peak_rate(marks["fix"], marks["rollback"])
        ratio = restart_peak / steady if steady else float("inf")
        # The fix's restart counts in full: how long the old process takes to stop is the pile's
        # doing (requests in flight hold it until Docker kills it) unless it drains within a bound.
        gap, replies = self._longest_bot_gap(run, marks["release_live"], marks["rollback"])
        gap_all, _ = self._longest_bot_gap(run, marks["load"], end)
        release_window = (marks["release_live"], marks["fix"])
        large_shares = {
            agent.name: _ok_share(attempts, agent.name, *release_window)
            for agent in self._pollers.agents
            if agent.size == LARGE
        }
        after = (marks["rollback_live"] + 2.0, end)
        served_after = {
            agent.name: _ok_share(attempts, agent.name, *after)
            for agent in self._pollers.agents
            if agent.size == LARGE
        }
        ordinary_after = [a for a in attempts if a.size == ORDINARY and after[0] <= a.at < after[1]]
        ordinary_ok_after = sum(a.ok for a in ordinary_after) / len(ordinary_after) if ordinary_after else 0.0
        rollback_ok = (
            self._deployed_after_rollback == "batched"
            and all(share > 0 for share in served_after.values())
            and ordinary_ok_after >= 0.95
        )
        self._record_metrics(run, phases, by_phase, steady, restart_peak, gap, gap_all, replies, end)
        return [
            Check(
                "ordinary_agents.p99",
                worst <= P99_BUDGET_S,
                ", ".join(f"{phase} {_ms(row[ORDINARY]['p99'])}" for phase, row in by_phase.items()),
                f"<= {P99_BUDGET_S * 1000:.0f} ms in every phase",
            ),
            Check(
                "restart.request_rate",
                ratio <= RESTART_RATE_BUDGET,
                f"{restart_peak:.1f}/s peak after the restart vs {steady:.1f}/s steady ({ratio:.1f}x)",
                f"<= {RESTART_RATE_BUDGET:g}x the steady rate",
            ),
            Check(
                "chatbot.longest_gap",
                gap <= BOT_GAP_BUDGET_S,
                f"{gap:.1f} s without an automated reply ({replies} replies from release to rollback; "
                f"the fix's restart took {marks['fix_restarted'] - marks['fix']:.1f} s)",
                f"<= {BOT_GAP_BUDGET_S:g} s",
            ),
            Check(
                "large_accounts.first_page",
                all(share >= LARGE_OK_SHARE for share in large_shares.values()),
                ", ".join(f"{name} {share:.0%}" for name, share in large_shares.items()),
                f">= {LARGE_OK_SHARE:.0%} of each large account's polls answered while the release runs",
            ),
            Check(
                "rollback.works",
                rollback_ok,
                f"api runs {self._deployed_after_rollback or '?'}; large accounts answered "
                f"{', '.join(f'{share:.0%}' for share in served_after.values())}; "
                f"ordinary {ordinary_ok_after:.0%}",
                "previous version deployed; every agent served after the rollback",
            ),
        ]

    # -- measurements -----------------------------------------------------------------------------

    def _steady_rate(self) -> float:
        assert self._pollers is not None
        # The first interval is skipped: agents start polling at random offsets within it.
        start, end = self._marks["load"] + LARGE_POLL_S, self._marks["release"]
        sent = sum(pollers.rate_series(self._pollers.attempts, start, end, end - start))
        return sent / (end - start) if end > start else 0.0

    def _peak_rate(self, start: float, end: float) -> float:
        assert self._pollers is not None
        buckets = pollers.rate_series(self._pollers.attempts, start, end, RATE_BUCKET_S)
        return max(buckets, default=0) / RATE_BUCKET_S

    def _longest_bot_gap(self, run: Run, start: float, end: float) -> tuple[float, int]:
        """The longest stretch of [start, end) with no automated reply, and the replies in it."""
        replies = sorted(at for at in run.history.observation_columns("bot_reply").at if start <= at < end)
        edges = [start, *replies, end]
        return max(b - a for a, b in itertools.pairwise(edges)), len(replies)

    def _record_metrics(
        self,
        run: Run,
        phases: dict[str, tuple[float, float]],
        by_phase: dict[str, Any],
        steady: float,
        restart_peak: float,
        gap: float,
        gap_all: float,
        replies: int,
        end: float,
    ) -> None:
        assert self._pollers is not None and self._pressure is not None
        marks, attempts = self._marks, self._pollers.attempts
        shed = pollers.outcomes(attempts, marks["load"], end)
        del shed["200"]
        run.metrics["gateway"] = {
            "agents": {
                "ordinary": self.population.ordinary_agents,
                "large": self.population.large_agents,
                "large_conversations": self.population.large_conversations,
                "client_retry_policy": self._pollers.policy.name,
            },
            "marks_s": {name: round(at - marks["load"], 2) for name, at in marks.items()},
            "steady_rate_per_s": round(steady, 2),
            "restart_peak_rate_per_s": round(restart_peak, 2),
            "restart_peak_ratio": round(restart_peak / steady, 2) if steady else None,
            "release_deploy_peak_rate_per_s": round(
                self._peak_rate(marks["release"], marks["release_live"] + 5), 2
            ),
            "rollback_peak_rate_per_s": round(
                self._peak_rate(marks["rollback"], marks["rollback_live"] + 5), 2
            ),
            "latency_by_phase_s": by_phase,
            "over_time": pollers.over_time(attempts, marks["load"], end),
            "not_ok_by_outcome": dict(shed),
            "not_ok_by_size": {
                size: {
                    k: v
                    for k, v in pollers.outcomes(attempts, marks["load"], end, size).items()
                    if k != "200"
                }
                for size in (ORDINARY, LARGE)
            },
            "retries_given_up": dict(self._pollers.gave_up),
            "chatbot": {
                "replies_release_to_rollback": replies,
                "longest_gap_s": round(gap, 2),
                "api_stop_start_s": round(marks["fix_restarted"] - marks["fix"], 2),
            },
            "chatbot_longest_gap_whole_run_s": round(gap_all, 2),
            "redis": {phase: self._pressure.summary(*window) for phase, window in phases.items()},
        }


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


async def _wait_serving(run: Run, timeout: float = 15.0) -> None:
    """Until the api answers /health again after a deploy or restart, or `timeout`: a throttled api
    may not answer at all, and that is the symptom, not a harness failure."""
    api = (await run.call(run.stack.endpoints)).api
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{api}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await run.sleep(0.1)
    run.symptom(f"the api does not answer /health {timeout:.0f} s after its restart")


def _ok_share(attempts: list[pollers.Attempt], agent: str, start: float, end: float) -> float:
    """The share of an agent's polls (first tries) in [start, end) that ended answered 200."""
    polls = [a for a in attempts if a.agent == agent and start <= a.at < end]
    first_tries = sum(1 for a in polls if a.attempt == 1)
    return sum(a.ok for a in polls) / first_tries if first_tries else 0.0


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"
