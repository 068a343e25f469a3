"""Game day (the project's own, no postmortem): a lossy link between the relay and the broker.

A fifth of the TCP packets the relay sends to the broker nodes are answered with a reset (a
flapping load balancer, a conntrack table overflowing on the way): connections break mid-publish,
again and again, while the api keeps accepting messages. With publisher confirms the relay counts an
event as sent only once the broker has confirmed it; everything else stays in the outbox and is
replayed after a reconnect, and the idempotent consumer applies a replayed duplicate once. Without
confirms the relay moves its cursor as soon as a publish has left the process: the batch a reset
cut off never reached the broker and is never sent again.

Both profiles get the same fault, load, timing and runbook; only the relay's confirm setting differs.

Status (not done): measured on 2026-12-01, the vulnerable profile is NOT caught yet. With 20 % of
the relay's packets to the brokers reset ("out") it held: 700 acked, 0 lost; resetting the
brokers' packets instead ("in") also held: 708 acked, 0 lost. A reset raised by the relay's own
kernel fails the send at once, so the publish is never counted as sent. Catching the missing
confirms likely needs the loss to happen after the socket took the data, on the far side (e.g.
resets on the broker nodes' side of the link, or the broker dropping the connection).
"""

from __future__ import annotations

from faults.network import ConnectionResets
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.stack.protocol import BROKER_NODES

RESET_SHARE = 0.2


class LossyLink(Scenario):
    id = "lossy-link"
    title = "The relay's link to the broker resets a fifth of its packets"
    source = "the project's own game day (no postmortem): a lossy, resetting link between relay and broker"
    drill = Drill(
        briefing=(
            "The relay, which moves accepted messages from the outbox to RabbitMQ, keeps losing its "
            "broker connections: a fifth of what it sends is answered with a TCP reset. The api is fine "
            "and keeps accepting messages. Fix the link, and make sure every accepted message is processed."
        ),
        symptoms=(
            "the relay logs connection resets and reconnects many times a minute",
            "the outbox backlog grows and shrinks in bursts",
            "end-to-end canary messages arrive late or not at all",
        ),
        hints=(
            "When does the relay consider an event sent: when it left the socket, or when the broker "
            "confirmed it?",
            "Compare the relay's cursor with what the broker's queue received.",
        ),
        runbook=(
            "Take the faulty hop out of the path between the relay and the broker.",
            "Watch the relay reconnect and replay its outbox.",
            "Check that no acknowledged message is missing or applied twice.",
        ),
    )
    profile_settings = {
        "hardened": {},
        # The relay counts an event as sent once basic.publish returns, without the broker's confirm.
        "vulnerable": {"PUBLISHER_CONFIRMS": "off"},
    }
    # The product's promise, judged on the record: no acknowledged message lost, none applied twice.
    vulnerable_symptoms = ("messages.lost",)

    def default_timing(self) -> Timing:
        return Timing(steady_s=5, outage_s=20, after_recovery_s=5, drain_timeout_s=120, message_rate=20)

    async def inject(self, run: Run) -> None:
        await run.inject(
            ConnectionResets("relay", peers=list(BROKER_NODES), direction="out", share=RESET_SHARE),
            f"{RESET_SHARE:.0%} of the relay's TCP packets to the broker nodes are answered with a reset",
        )

    async def recover(self, run: Run) -> None:
        run.action("take the resetting hop out of the relay's path to the broker")
        await run.revert_faults()
        await run.call(run.stack.wait_healthy, 120)
        run.mark_recovered("the relay publishes over a clean link again")
