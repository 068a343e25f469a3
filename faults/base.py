"""A fault: something injected into the stack that can always be reverted.

A fault is data (its `record()` goes to the ledger) plus two actions, `inject` and `revert`.
`revert` must be safe to call when the fault is only half applied, or already reverted:
`outage heal` calls it for whatever a crashed run left in the ledger.

`preflight` runs before the ledger is written: it refuses a fault that cannot be applied here (a
container outside the project, a kernel feature that is missing) and fills in what the ledger must
hold to revert it (the limits before a change, for instance).

Faults register by `kind`, so a ledger record names its class (as Toxiproxy names its toxics).
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from harness.stack.ledger import FaultLedger
from harness.stack.protocol import Stack

_KINDS: dict[str, type[Fault]] = {}


class FaultRefused(RuntimeError):
    """The fault cannot be applied to this stack; nothing was changed and nothing ledgered."""


@dataclass
class Fault(ABC):
    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _KINDS[cls.kind] = cls

    def preflight(self, stack: Stack) -> None:  # noqa: B027 - optional, empty by default
        """Refuse (FaultRefused) what cannot be applied; record what the revert will need."""

    @abstractmethod
    def inject(self, stack: Stack) -> None: ...

    @abstractmethod
    def revert(self, stack: Stack) -> None: ...

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in asdict(self).items())
        return f"{self.kind}({params})"

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


def _import_families() -> None:
    """Import every fault family module (faults/*.py), so each kind is registered: `outage heal`
    must rebuild any fault a crashed run ledgered, whichever modules that run had imported."""
    import faults

    for module in pkgutil.iter_modules(faults.__path__):
        if not module.ispkg:
            importlib.import_module(f"faults.{module.name}")


def fault_kinds() -> dict[str, type[Fault]]:
    """Every fault there is, by kind."""
    _import_families()
    return dict(_KINDS)


def fault_from_record(record: dict[str, Any]) -> Fault:
    """Rebuild a fault from its ledger record (for `outage heal`)."""
    params = dict(record)
    kind = params.pop("kind", None)
    if kind not in _KINDS:
        _import_families()
    if kind not in _KINDS:
        raise ValueError(f"the ledger names an unknown fault kind {kind!r}")
    return _KINDS[kind](**params)


@contextmanager
def injected(fault: Fault, stack: Stack, ledger: FaultLedger | None = None) -> Iterator[Fault]:
    """Apply a fault for the duration of a block; it is reverted however the block ends."""
    ledger = ledger or FaultLedger()
    fault.preflight(stack)
    entry = ledger.record_injection(fault.record())
    try:
        fault.inject(stack)
        yield fault
    finally:
        fault.revert(stack)
        ledger.record_revert(entry)


def apply(fault: Fault, stack: Stack, ledger: FaultLedger) -> str:
    """Inject without a block (a scenario phase reverts it later with `revert`)."""
    fault.preflight(stack)
    entry = ledger.record_injection(fault.record())
    fault.inject(stack)
    return entry


def revert(fault: Fault, stack: Stack, ledger: FaultLedger, entry: str) -> None:
    fault.revert(stack)
    ledger.record_revert(entry)
