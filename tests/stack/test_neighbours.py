"""While a test that needs the machine whole runs, the other workers' stacks are frozen, and they
thaw exactly as they were however the test ends. Real containers: two sleeping ones per fake
project, labelled as compose labels its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest

from harness.stack import neighbours

pytestmark = [pytest.mark.stack]

IMAGE = "outage-lab/debian:bookworm"  # built by `outage build`, as every image here


@pytest.fixture
def three_worker_stacks() -> Iterator[list[str]]:
    """Projects <base>-gw0, -gw1, -gw2 and one unrelated project, two sleeping containers each."""
    client = docker.from_env()
    base = f"neighbours-{uuid.uuid4().hex[:8]}"
    projects = [f"{base}-gw0", f"{base}-gw1", f"{base}-gw2", f"{base}x-gw1"]
    containers = [
        client.containers.run(
            IMAGE, ["sleep", "600"], detach=True, labels={neighbours.PROJECT_LABEL: project}
        )
        for project in projects
        for _ in range(2)
    ]
    try:
        yield projects
    finally:
        for container in containers:
            container.remove(force=True)


def _states(project: str) -> list[str]:
    found = docker.from_env().containers.list(
        all=True, filters={"label": f"{neighbours.PROJECT_LABEL}={project}"}
    )
    return sorted(c.status for c in found)


def test_the_siblings_of_a_worker_stack_are_the_other_workers_of_the_same_base(three_worker_stacks):
    gw0, gw1, gw2, unrelated = three_worker_stacks

    assert neighbours.worker_siblings(gw0) == [gw1, gw2]
    assert unrelated not in neighbours.worker_siblings(gw1)
    assert neighbours.worker_siblings("a-project-of-no-worker") == []


def test_siblings_are_frozen_for_the_block_and_thawed_after_it_even_when_it_fails(three_worker_stacks):
    gw0, gw1, gw2, unrelated = three_worker_stacks

    with (
        pytest.raises(RuntimeError, match="the test failed"),
        neighbours.frozen(neighbours.worker_siblings(gw0)) as paused,
    ):
        assert len(paused) == 4
        assert _states(gw1) == _states(gw2) == ["paused", "paused"]
        assert _states(gw0) == _states(unrelated) == ["running", "running"]
        raise RuntimeError("the test failed")

    for project in three_worker_stacks:
        assert _states(project) == ["running", "running"]


def test_a_stack_left_frozen_by_a_dead_worker_is_thawed_by_its_own_worker(three_worker_stacks):
    gw0, gw1, _, _ = three_worker_stacks
    for container in docker.from_env().containers.list(
        filters={"label": f"{neighbours.PROJECT_LABEL}={gw1}"}
    ):
        container.pause()

    assert len(neighbours.thaw(gw1)) == 2
    assert _states(gw1) == ["running", "running"]
    assert neighbours.thaw(gw0) == []
