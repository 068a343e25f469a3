"""`outage heal`: revert whatever a crashed run left behind and bring the stack back to healthy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faults.base import fault_from_record
from faults.broker import restart_cluster
from faults.failpoints import clear_all_failpoints
from harness.stack.compose import run_compose
from harness.stack.compose_stack import ComposeStack
from harness.stack.ledger import FaultLedger
from harness.stack.protocol import SERVICES, StackStatus


@dataclass
class HealReport:
    reverted: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    status: StackStatus | None = None


def heal(
    stack: ComposeStack,
    ledger: FaultLedger | None = None,
    timeout: float = 240,
    say: Callable[[str], None] = print,
) -> HealReport:
    started = time.monotonic()
    ledger = ledger or FaultLedger()
    report = HealReport()

    # A revert may need what another fault took away (a failpoint is cleared through the api,
    # which needs the stack's ports): what fails now is tried again once the stack is repaired.
    retry = _revert_outstanding(stack, ledger, report, say, final=False)

    # Generic repair, whatever the ledger says: nothing paused, nothing cut off, everything started.
    for name, service in stack.status(run_waiting_checks=False).services.items():
        if service.state == "paused":
            stack.unpause(name)
            report.repaired.append(f"unpaused {name}")
        if service.state != "missing" and not stack.is_connected(name):
            stack.connect(name)
            report.repaired.append(f"reconnected {name}")
    # A broker cluster left with every node down, or nodes stuck waiting for their peers, comes
    # back only in the runbook's order (faults/broker.py); starting all at once may not do.
    try:
        report.repaired.extend(restart_cluster(stack, timeout=timeout, say=say))
    except Exception as exc:
        report.errors.append(f"restarting the broker cluster: {exc}")
    stopped = [n for n, s in stack.status(run_waiting_checks=False).services.items() if s.state != "running"]
    if stopped:
        say(f"starting {', '.join(stopped)}")
        run_compose(["up", "-d", "--no-build", *SERVICES], env=stack.host_ports())
        report.repaired.append(f"started {', '.join(stopped)}")

    status = stack.wait_healthy(timeout)
    if retry:
        _revert_outstanding(stack, ledger, report, say, final=True)
    try:
        cleared = clear_all_failpoints(stack)
    except Exception as exc:
        report.errors.append(f"clearing failpoints: {exc}")
    else:
        report.repaired.extend(f"cleared failpoint {name}" for name in cleared)
    report.status = status
    report.seconds = time.monotonic() - started
    return report


def _revert_outstanding(
    stack: ComposeStack, ledger: FaultLedger, report: HealReport, say: Callable[[str], None], final: bool
) -> bool:
    """Revert every fault the ledger still holds; True when some could not be reverted yet."""
    failed = False
    for entry_id, record in ledger.outstanding():
        try:
            fault = fault_from_record(record)
            fault.revert(stack)
            ledger.record_revert(entry_id)
            report.reverted.append(fault.describe())
            say(f"reverted {fault.describe()}")
        except Exception as exc:  # keep healing the rest; the generic repair may make it possible
            failed = True
            if final:
                report.errors.append(f"revert {record}: {exc}")
                say(f"could not revert {record}: {exc}")
            else:
                say(f"could not revert {record} yet ({exc}); again once the stack is repaired")
    return failed
