"""The broken Redis instrumentation that the supportbee scenario deploys into the job runners."""

import pytest

from services.worker.instrumentation import InstrumentationError, instrument


class RecordingClient:
    """Stands in for a redis client: records which commands actually ran."""

    def __init__(self):
        self.ran = []
        self.connection_pool = "pool"

    def brpop(self, keys, timeout=0):
        self.ran.append("brpop")
        return ("jobs:email", "job")

    def xreadgroup(self, *args, **kwargs):
        self.ran.append("xreadgroup")
        return []

    def hset(self, *args):
        self.ran.append("hset")
        return 1


def test_off_is_the_plain_client():
    client = RecordingClient()
    assert instrument(client, "off") is client


def test_raise_all_fails_every_command_before_it_reaches_redis():
    client = RecordingClient()
    broken = instrument(client, "raise_all")
    for command in (lambda: broken.hset("h", "k", "v"), lambda: broken.brpop(["jobs:email"])):
        with pytest.raises(InstrumentationError):
            command()
    assert client.ran == []


def test_break_fetch_takes_the_job_from_redis_and_then_fails():
    client = RecordingClient()
    broken = instrument(client, "break_fetch")
    with pytest.raises(InstrumentationError):
        broken.brpop(["jobs:email"], timeout=1)
    with pytest.raises(InstrumentationError):
        broken.xreadgroup("workers", "c", {"jobs:email": ">"})
    assert client.ran == ["brpop", "xreadgroup"]  # the jobs left Redis although the caller never got them


def test_break_fetch_leaves_every_other_command_working():
    client = RecordingClient()
    assert instrument(client, "break_fetch").hset("h", "k", "v") == 1


def test_attributes_that_are_not_commands_pass_through():
    assert instrument(RecordingClient(), "raise_all").connection_pool == "pool"


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        instrument(RecordingClient(), "sometimes")
