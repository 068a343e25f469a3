"""The live-server upgrade at full size: 5,000 simulated tabs (by default) through the whole scenario.

Runs gorgias-2023-live-updates-upgrade with a bigger population, samples the live container's memory
through the Docker API while it runs, and prints the figures the postmortem asks for: connections over
time, the handshake peak, close codes, update latency before/during/after, missed and duplicate updates,
reconvergence, banners, and the live server's memory per connection. Needs the stack up (`outage up`).

    .venv/bin/python bench/live_upgrade_bench.py --tabs 5000 --profile hardened
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import threading
import time
from pathlib import Path

import docker.errors
import httpx
from run_exit import bench_exit_code

from harness.engine.runner import run_scenario
from harness.engine.scenario import scenario_class
from harness.record.record import Record
from harness.stack.compose_stack import ComposeStack
from harness.stack.protocol import Endpoints

SCENARIO = "gorgias-2023-live-updates-upgrade"


class GatewayDirect(ComposeStack):
    """The stack, with the tabs sent to the gateway's own address on the compose network instead of
    its published host port: Docker's userland port proxy, which carries a published port, stopped
    accepting connections during a 5,000-tab ramp while the gateway behind it was fine. The gateway
    is never redeployed, so its address holds for the whole run."""

    def endpoints(self) -> Endpoints:
        published = super().endpoints()
        return dataclasses.replace(published, live=f"ws://{self.address('gateway')}:8765")


class LiveMemorySampler:
    """The live container's memory and connection count every two seconds, across its restarts."""

    def __init__(self, stack: ComposeStack) -> None:
        self.stack = stack
        self.samples: list[tuple[float, int, int]] = []  # (time, bytes in use, connections)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            try:
                container = self.stack.container("live")
                stats = container.stats(stream=False)
                memory = stats.get("memory_stats", {})
                # Page cache is not the server's; what the kernel would have to keep is.
                used = memory.get("usage", 0) - memory.get("stats", {}).get("inactive_file", 0)
                health = httpx.get(
                    self.stack.endpoints().live.replace("ws://", "http://") + "/health", timeout=2
                )
                self.samples.append((time.time(), used, int(health.json()["connections"])))
            except (docker.errors.DockerException, httpx.HTTPError, KeyError, ValueError, RuntimeError):
                continue

    def per_connection(self) -> dict[str, float | int | None]:
        """Memory at the most connections, minus the least memory seen with almost none."""
        if not self.samples:
            return {"bytes_per_connection": None}
        busiest = max(self.samples, key=lambda s: s[2])
        idle = [used for _, used, connections in self.samples if connections <= max(10, busiest[2] // 100)]
        baseline = min(idle) if idle else min(used for _, used, _ in self.samples)
        per = (busiest[1] - baseline) / busiest[2] if busiest[2] else None
        return {
            "connections": busiest[2],
            "memory_at_peak_mib": round(busiest[1] / 2**20, 1),
            "idle_memory_mib": round(baseline / 2**20, 1),
            "bytes_per_connection": round(per) if per is not None else None,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=5000)
    parser.add_argument("--profile", choices=("hardened", "vulnerable"), default="hardened")
    parser.add_argument("--ramp-per-s", type=float, default=100.0)
    parser.add_argument("--report-dir", type=Path, default=Path("reports/live-upgrade-bench"))
    parser.add_argument(
        "--published-port",
        action="store_true",
        help="send the tabs through the gateway's published host port (Docker's port proxy) too",
    )
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.tabs * 2 + 1024)), hard))

    scenario = scenario_class(SCENARIO)()
    scenario.timing.tabs = args.tabs  # type: ignore[attr-defined]
    scenario.timing.ramp_per_s = args.ramp_per_s  # type: ignore[attr-defined]
    stack = ComposeStack() if args.published_port else GatewayDirect()
    with LiveMemorySampler(stack) as memory:
        result = run_scenario(scenario, stack, args.profile, 1, args.report_dir / args.profile)
    print(f"{SCENARIO} ({args.profile}, {args.tabs} tabs): {result.verdict} in {result.wall_s:.0f} s")
    if result.error:
        print(f"harness error: {result.error}")
    for check in result.checks:
        print(
            f"  {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.observed} (want {check.expected})"
        )
    print(json.dumps(result.metrics, indent=1, default=str))
    print("live server memory:", json.dumps(memory.per_connection()))
    record = Record.load(args.report_dir / args.profile)
    upgrade_at = record.mark_at("upgrade_started") or 0.0
    over_time = record.stream("connections")
    print("connections over time (s from the upgrade: tabs connected / server count / handshakes):")
    for sample in over_time[:: max(1, len(over_time) // 40)]:
        t = round(sample["at"] - upgrade_at, 1)
        print(f"  {t:>7}: {sample['connected']:>6} / {sample['server']} / {sample['handshakes']}")
    print("messages:", result.messages)
    return bench_exit_code([result])


if __name__ == "__main__":
    sys.exit(main())
