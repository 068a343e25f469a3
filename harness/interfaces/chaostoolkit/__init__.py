"""A Chaos Toolkit extension: drive the Outage Lab stack from a Chaos Toolkit experiment.

Activities are plain Python functions (`"type": "python"` providers):
- `harness.interfaces.chaostoolkit.actions`: inject and revert any fault of `faults/` (by its
  ledger kind and parameters), run the stack with a scenario's profile settings, send customer
  messages, and `heal` (what `outage heal` does) as the rollback.
- `harness.interfaces.chaostoolkit.probes`: the steady state (the api's health, the broker's queue
  depth, the messages lost so far) and a recorded run's checks.

The stack is the compose project named by `OUTAGE_PROJECT`, as for the `outage` command.
See examples/chaostoolkit/ for an experiment.
"""
