"""What reaches disk, as it happens: the history, the timeline, the report."""
