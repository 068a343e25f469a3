"""Stack control: the Stack protocol, its Compose backend, images, the fault ledger, heal."""
