"""Game day (the project's own, no postmortem): a lossy link between the relay and the broker.

At the broker nodes' end of the link (a failing port, an overloaded virtual switch, a stateful
firewall that lost track of some flows), a fifth of the TCP packets the relay sends are dropped and
one in fifty is answered with a reset (21.6 % hit in all), for a minute, while the api keeps
accepting messages. Other clients of the brokers (the worker) are untouched.

Why the relay without confirms loses. A dropped packet is retransmitted later, so the relay's data
waits in its kernel's send buffer after the write that handed it over has returned. A reset on a
later packet (a retransmission, the next publish) kills the connection, and the relay's kernel
throws away what it still held: the broker never read it. Without confirms the relay moved its
cursor as soon as basic.publish had written to the socket, so those events are never sent again.
With confirms a batch counts as sent only once the broker confirmed it; one whose confirms never
came stays in the outbox and is replayed after a reconnect, and the idempotent consumer applies a
replayed duplicate once.

What does not catch it (measured on 2026-12-01, 30 s of fault, 20 messages/s, vulnerable profile;
acked / lost): resets alone, on 25 % of the relay's packets at the brokers' end: 854 / 0; 10 % reset
and a fifth of the rest dropped: 904 / 0. A reset on a packet that a publish is still writing (pika
writes a message as three frames, one send each; a batch is many publishes) fails the next send at
once, so the relay sees the broken connection before it moves its cursor and replays the batch. With
resets that frequent, no connection outlives its first backlog batch (the relay's log shows them
dying 5 to 10 ms after connecting): the relay falls behind and publishes nothing that a reset could
take from its send buffer. An earlier attempt reset 20 % of the packets in the relay's own
namespace: of those it sent (its kernel fails the send at once), 700 / 0; of those the brokers sent
it, 708 / 0.

What catches it: mostly drops, and resets rare enough that publishes complete and the cursor moves
while data still waits for its retransmission. 5 % reset and a fifth of the rest dropped, 30 s: lost
6, 0 and 1 (2 of 3 runs caught). 2 % reset and a fifth of the rest dropped, 30 s: lost 6, 51, 1, 3
and 5 (5 of 5); the hardened profile held there (941 acked, 0 lost, 0 applied twice) as at 5 % (909
acked, 0, 0). At one minute of fault, the setting kept here, two runs a profile: vulnerable 1,512
acked, 164 lost, and 1,519 acked, 3 lost (caught in 7 of 7 runs at this mix, in one to a few
separate bursts of loss a run: a clean minute is unlikely, not impossible); hardened 1,541 and 1,496
acked, 0 lost, 0 applied twice, recovered 66 and 64 s after the fault began, the backlog replayed in
5 s (the worker skipped 485 and 251 replayed duplicates; the relay reconnected 21 and 26 times).

Both profiles get the same fault, load, timing and runbook; only the relay's confirm setting
differs.
"""

from __future__ import annotations

from faults.network import ConnectionResets, PacketLoss
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.stack.protocol import BROKER_NODES

# Shares of the relay's packets hit at each broker node's end of the link. The resets' chain is
# inserted last, so it is met first: 2 % reset, then 20 % of the rest dropped, 21.6 % hit in all.
DROP_SHARE = 0.2
RESET_SHARE = 0.02
# A minute of it: each reset is a draw (it may come while a publish is still writing, which the
# relay sees at once), so the link stays lossy long enough for many draws.
OUTAGE_S = 60.0


class LossyLink(Scenario):
    id = "lossy-link"
    title = "The relay's link to the broker drops a fifth of its packets and resets some"
    source = "the project's own game day (no postmortem): a lossy, resetting link between relay and broker"
    drill = Drill(
        briefing=(
            "The relay, which moves accepted messages from the outbox to RabbitMQ, keeps losing its "
            "broker connections: the link to the broker nodes drops many of its packets and now and "
            "then answers one with a reset. The api is fine and keeps accepting messages. Fix the link, "
            "and make sure every accepted message is processed exactly once."
        ),
        symptoms=(
            "the relay logs connection resets and reconnects many times a minute",
            "the outbox backlog grows and shrinks in bursts",
            "end-to-end canary messages arrive late or not at all",
        ),
        hints=(
            "When does the relay consider an event sent: when it left the process, or when the broker "
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
        # The relay counts an event as sent once basic.publish has written it, without the broker's confirm.
        "vulnerable": {"PUBLISHER_CONFIRMS": "off"},
    }
    # The product's promise, judged on the record: no acknowledged message lost, none applied twice.
    vulnerable_symptoms = ("messages.lost",)

    def default_timing(self) -> Timing:
        return Timing(steady_s=5, outage_s=OUTAGE_S, after_recovery_s=5, drain_timeout_s=120, message_rate=20)

    async def inject(self, run: Run) -> None:
        """At each broker node, a fifth of the packets from the relay are dropped and one in fifty is
        answered with a reset (the broker nodes' end of the link; other clients are untouched)."""
        for node in BROKER_NODES:
            await run.inject(
                PacketLoss(node, peers=["relay"], direction="in", share=DROP_SHARE),
                f"{node} drops {DROP_SHARE:.0%} of the packets the relay sends it",
            )
            await run.inject(
                ConnectionResets(node, peers=["relay"], direction="in", share=RESET_SHARE),
                f"{node} answers {RESET_SHARE:.0%} of the relay's packets with a TCP reset",
            )

    async def recover(self, run: Run) -> None:
        """Take the faulty hop out of the path; wait until the stack is healthy."""
        run.action("take the faulty hop out of the relay's path to the broker")
        await run.revert_faults()
        await run.call(run.stack.wait_healthy, 120)
        run.mark_recovered("the relay publishes over a clean link again")
