"""The broker's memory high watermark, set at runtime on every node (no restart needed).

When a node's memory passes its watermark RabbitMQ raises a memory alarm and blocks every
publishing connection in the whole cluster until memory falls again. A scenario sets an absolute
watermark that fits a small machine; reverting restores the relative default.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from faults.base import Fault
from harness.stack.protocol import BROKER_NODES, Stack

DEFAULT_RELATIVE_WATERMARK = "0.4"  # compose/docker-compose.yml RABBITMQ_MEMORY_WATERMARK


@dataclass
class MemoryWatermark(Fault):
    """Every broker node's memory alarm trips at `absolute_bytes`."""

    kind = "memory_watermark"
    absolute_bytes: int

    def inject(self, stack: Stack) -> None:
        _set_everywhere(stack, ["absolute", str(self.absolute_bytes)])

    def revert(self, stack: Stack) -> None:
        _set_everywhere(stack, [DEFAULT_RELATIVE_WATERMARK])


def _set_everywhere(stack: Stack, value: list[str]) -> None:
    # rabbitmqctl takes seconds to start: on every node at once, the watermark changes together.
    with ThreadPoolExecutor(len(BROKER_NODES)) as pool:
        for done in [pool.submit(_set, stack, node, value) for node in BROKER_NODES]:
            done.result()


def _set(stack: Stack, node: str, value: list[str]) -> None:
    code, output = stack.exec(node, ["rabbitmqctl", "set_vm_memory_high_watermark", *value], timeout=30)
    if code != 0:
        raise RuntimeError(f"{node}: set_vm_memory_high_watermark {' '.join(value)} failed: {output[-300:]}")
