"""Game day (the project's own, no postmortem): a half partition. The worker loses every broker
node while it still reaches Redis, under load, for longer than the AMQP heartbeat time-out.

Nothing is down: every container runs, every health check that does not cross the cut passes.
The worker keeps writing effects for what it already holds; its acks, and the deliveries still on
the wire, vanish. The broker declares the connection dead after two missed heartbeats (10 s each)
and, for a consumer with manual acks, requeues what was never acked; the worker reconnects once the
link is back and the idempotent consumer skips what it had applied already. A consumer that acks on
delivery (auto-ack) has handed the broker its receipts before the work: whatever was on the wire
when the link went is gone for good.

Both profiles get the same fault, load, timing and runbook; only the worker's ack setting differs.
"""

from __future__ import annotations

from faults.network import LinkPartition
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.stack.protocol import BROKER_NODES

# Longer than the broker's heartbeat time-out (two missed 10 s heartbeats, services/common/broker.py),
# so the broker, not a lucky retransmission, decides what becomes of the deliveries in flight.
PARTITION_S = 40.0


class HalfPartition(Scenario):
    id = "half-partition"
    title = "The worker is cut off from the broker but not from Redis"
    source = "the project's own game day (no postmortem): a partial network partition under load"
    drill = Drill(
        briefing=(
            "Customers keep writing in. Every container is up and the dashboards are mostly green, but "
            "a network change has cut the worker off from all three broker nodes; it still reaches Redis. "
            "Find the broken link, restore it, and make sure every message the api accepted is processed "
            "exactly once."
        ),
        symptoms=(
            "the events queue grows while the worker's heartbeat in Redis stays fresh",
            "the broker shows the worker's consumer with unacknowledged deliveries, then drops it",
            "end-to-end canary messages stop arriving",
        ),
        hints=(
            "Which links does the worker still have? Try the broker from inside its container.",
            "What happens to a delivery the worker received but could not acknowledge?",
        ),
        runbook=(
            "Restore the worker's route to the broker nodes.",
            "Watch the worker reconnect and the queue drain.",
            "Check that no acknowledged message is missing or applied twice.",
        ),
    )
    profile_settings = {
        "hardened": {},
        # The worker acks on delivery (auto-ack): the broker forgets a message once it is sent.
        "vulnerable": {"ACK_AFTER_WORK": "off"},
    }
    # The product's promise, judged on the record: no acknowledged message lost, none applied twice.
    vulnerable_symptoms = ("messages.lost",)

    def default_timing(self) -> Timing:
        return Timing(
            steady_s=5, outage_s=PARTITION_S, after_recovery_s=5, drain_timeout_s=120, message_rate=20
        )

    async def inject(self, run: Run) -> None:
        await run.inject(
            LinkPartition("worker", peers=list(BROKER_NODES)),
            "the worker is cut off from rabbit1, rabbit2 and rabbit3 (it still reaches Redis)",
        )

    async def recover(self, run: Run) -> None:
        run.action("restore the worker's route to the broker nodes")
        await run.revert_faults()
        await run.call(run.stack.wait_healthy, 120)
        run.mark_recovered("the worker reaches the broker again")
