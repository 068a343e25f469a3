"""What people and CI touch: the CLI, the console, the demo, the pytest plugin."""
