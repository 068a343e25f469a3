"""Each fault primitive does to the real stack what it says, and is always reverted.

And when the harness itself dies mid-fault, `outage heal` puts the stack back.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest

from faults.containers import KillContainer, Partition, PauseContainer, StopContainer
from faults.failpoints import Failpoint
from harness.stack import credentials
from tests.stack.polling import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.chaos]


def _state(stack, service: str) -> str:
    return stack.control.status().services[service].state


def _ready(api_url: str) -> int:
    try:
        return httpx.get(f"{api_url}/ready", timeout=3).status_code
    except httpx.HTTPError:
        return 0


def test_killed_worker_is_down_during_the_fault_and_running_after(outage_stack, outage_fault):
    with outage_fault(KillContainer("worker")):
        assert _state(outage_stack, "worker") == "exited"
    # Leaving the block returns once the stack is healthy again.
    assert _state(outage_stack, "worker") == "running"
    assert outage_stack.control.status().healthy


def test_stopped_relay_comes_back(outage_stack, outage_fault):
    with outage_fault(StopContainer("relay", grace_s=2)):
        assert _state(outage_stack, "relay") == "exited"
    assert outage_stack.control.status().healthy


def test_paused_api_is_taken_out_of_the_gateway_then_serves_again(outage_stack, outage_fault):
    with outage_fault(PauseContainer("api")):
        assert _state(outage_stack, "api") == "paused"
        # The gateway's checks find no api answering: clients get a quick 503 saying when to retry.
        refused = wait_for(lambda: _gateway_refuses(outage_stack.api_url))
        assert refused, "the gateway kept routing to a paused api"
    # Leaving the block returns once the gateway routes to the api again: no waiting here.
    assert httpx.get(f"{outage_stack.api_url}/health", timeout=5).status_code == 200


def _gateway_refuses(api_url: str) -> bool:
    try:
        reply = httpx.get(f"{api_url}/health", timeout=2)
    except httpx.TimeoutException:
        return False
    return (
        reply.status_code == 503
        and reply.json()["error"] == "api_unavailable"
        and reply.headers.get("retry-after") == "1"
    )


def test_redis_cut_off_makes_the_api_unready_and_reconnecting_restores_its_name(outage_stack, outage_fault):
    with outage_fault(Partition("redis")):
        assert wait_for(lambda: _ready(outage_stack.api_url) == 503), "the api should notice Redis is gone"
    # Peers find Redis by its service name again only if the alias came back with the reconnect.
    assert wait_for(lambda: _ready(outage_stack.api_url) == 200, timeout=60)


def test_failpoint_is_visible_while_set_and_gone_after(outage_stack, outage_fault):
    admin = {"Authorization": f"Bearer {outage_stack.admin_token}"}
    with outage_fault(Failpoint("api.latency_ms", 50)):
        listed = httpx.get(f"{outage_stack.api_url}/admin/failpoints", headers=admin).json()["failpoints"]
        assert listed == {"api.latency_ms": 50}
    assert httpx.get(f"{outage_stack.api_url}/admin/failpoints", headers=admin).json()["failpoints"] == {}


_CRASHING_HARNESS = textwrap.dedent(
    """
    import sys, time
    from faults.base import apply
    from faults.containers import Partition, PauseContainer, StopContainer
    from faults.failpoints import Failpoint
    from harness.stack.compose_stack import ComposeStack
    from harness.stack.ledger import FaultLedger

    stack, ledger = ComposeStack(), FaultLedger()
    for fault in (Failpoint("worker.pause", True), PauseContainer("api"), Partition("relay"),
                  StopContainer("live", grace_s=1)):
        apply(fault, stack, ledger)
    print("faults in place", flush=True)
    time.sleep(600)
    """
)


def test_heal_reverts_what_a_killed_harness_left(outage_stack, tmp_path):
    env = {**os.environ, "OUTAGE_LEDGER": str(tmp_path / "ledger.jsonl")}
    harness = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_HARNESS], env=env, stdout=subprocess.PIPE, text=True
    )
    assert harness.stdout.readline().strip() == "faults in place"
    harness.send_signal(signal.SIGKILL)
    harness.wait()
    status = outage_stack.control.status()
    assert status.services["api"].state == "paused"
    assert status.services["live"].state == "exited"

    started = time.monotonic()
    healed = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "outage"), "heal"],
        env=env,
        capture_output=True,
        text=True,
    )
    print(f"heal took {time.monotonic() - started:.1f} s\n{healed.stdout}")
    assert healed.returncode == 0, healed.stderr

    status = outage_stack.control.status()
    assert status.healthy, status.problems()
    assert all(s.state == "running" for s in status.services.values())
    assert outage_stack.control.is_connected("relay")
    admin = {"Authorization": f"Bearer {outage_stack.admin_token}"}
    assert httpx.get(f"{outage_stack.api_url}/admin/failpoints", headers=admin).json()["failpoints"] == {}


def test_a_request_held_by_an_api_whose_address_moved_is_answered_502_in_seconds(outage_stack):
    """The flood's runbook cuts the api and the relay off the network and reconnects them: they can
    come back on each other's addresses. The api's socket to the gateway then has an address that
    is no longer its own, so no FIN ever leaves it when the api restarts. The gateway must not hold
    that request (and its slot) for its 15-minute server timeout: keepalive probes find the peer
    gone, and the client gets a 502 within seconds."""
    stack = outage_stack.control
    stack.configure({"API_REQUEST_DEADLINE_S": "0"})  # the api itself would otherwise answer in 1 s
    stack.wait_healthy(120)
    agent = {"Authorization": f"Bearer {credentials.agent_token('probe')}"}
    api = outage_stack.api_url
    ticket = httpx.post(
        f"{api}/tickets", headers=agent, json={"subject": "held", "customer": "held@example.com"}
    )
    held = Failpoint("api.latency_ms", 120_000)
    held.inject(stack)
    answered: dict[str, object] = {}

    def slow_read() -> None:
        started = time.monotonic()
        try:
            answered["status"] = httpx.get(
                f"{api}/tickets/{ticket.json()['id']}", headers=agent, timeout=300
            ).status_code
        except httpx.HTTPError as exc:
            answered["status"] = type(exc).__name__
        answered["after_s"] = time.monotonic() - started

    try:
        time.sleep(2)  # the services read failpoints at most once a second
        reader = threading.Thread(target=slow_read, daemon=True)
        reader.start()
        time.sleep(1)
        before = {service: stack.address(service) for service in ("api", "relay")}
        cut = [Partition("api"), Partition("relay")]
        for partition in cut:
            partition.inject(stack)
        # Reconnected highest address first, the first takes the lowest free one: the other's.
        for partition in sorted(cut, key=lambda p: ipaddress.ip_address(before[p.service]), reverse=True):
            partition.revert(stack)
        assert stack.address("api") == before["relay"], "the addresses did not swap: the test proves nothing"
        for service in ("api", "relay"):
            stack.restart(service)
        reader.join(60)  # the gateway's 15 minutes, had it waited them, would end far later
    finally:
        stack.wait_healthy(120)
        held.revert(stack)
    assert answered.get("status") == 502, answered
