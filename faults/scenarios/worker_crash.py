"""Demonstration: the worker is killed mid-stream under load, then restarted.

Not an incident of its own but the smallest outage that tells a safe consumer from an unsafe
one: a worker that acknowledges before doing the work loses whatever it had been sent.
"""

from __future__ import annotations

from faults.containers import KillContainer
from faults.failpoints import Failpoint
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing


class WorkerCrash(Scenario):
    id = "worker-crash"
    title = "The worker is killed mid-stream and restarted"
    source = "demonstration scenario (no postmortem): kill -9 of a consumer under load"
    drill = Drill(
        briefing=(
            "Customer messages flow through the api, the broker and the worker. The worker process dies "
            "without warning (an OOM kill) while messages keep arriving, and comes back a little later."
        ),
        symptoms=(
            "worker heartbeat stops",
            "the broker's events queue grows",
            "end-to-end canary messages stop arriving",
        ),
        hints=(
            "Was every message the worker had been sent acknowledged only after its effect was stored?",
            "Compare the messages the api acknowledged with the effects in the effects log.",
        ),
        runbook=(
            "Restart the worker.",
            "Watch the queue drain and the canary come back.",
            "Check that no acknowledged message is missing from its ticket's thread.",
        ),
    )
    profile_settings = {
        "hardened": {},
        # The worker acks on delivery (auto-ack) and prefetches a lot, as an unsafe consumer does.
        "vulnerable": {"ACK_AFTER_WORK": "off", "WORKER_PREFETCH": "500"},
    }
    vulnerable_symptoms = ("messages.lost",)

    def default_timing(self) -> Timing:
        return Timing(steady_s=5, outage_s=8, after_recovery_s=5, drain_timeout_s=60, message_rate=40)

    async def inject(self, run: Run) -> None:
        # A slow downstream first, so the worker holds a backlog when it dies: the crash has
        # something to lose. Then the kill, as an OOM killer would do it.
        await run.inject(
            Failpoint("worker.slow_ms", 50), "worker slowed to 50 ms per event (slow downstream)"
        )
        await run.sleep(4)
        await run.inject(KillContainer("worker"), "worker killed with SIGKILL mid-stream")

    async def recover(self, run: Run) -> None:
        run.action("restart the worker; the slow downstream is fixed")
        await run.revert_faults()
        await run.call(run.stack.wait_healthy, 120)
        run.mark_recovered("worker running and healthy again")
