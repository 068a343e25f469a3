"""On-call drills: a hidden fault, people recover the stack by hand, the harness keeps the clock."""
