"""The package is whole: its wheel, installed into a fresh virtualenv outside the checkout, drives the stack.

The compose file, the image recipes and the services' requirements ship inside the wheel, and the
stack's secrets are found at their fixed place, so nothing depends on a source tree or on the
current directory. The images that exist are reused (no build here, to keep it quick).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

CHECKOUT = Path(__file__).resolve().parents[2]

PLUGIN_TEST = textwrap.dedent(
    """
    import httpx

    from harness.stack import credentials


    def test_the_plugin_hands_over_the_running_stack(outage_stack):
        assert httpx.get(f"{outage_stack.api_url}/health", timeout=10).status_code == 200


    def test_the_stacks_own_admin_token_is_accepted(outage_stack):
        assert outage_stack.admin_token == credentials.admin_token()
        admin = {"Authorization": f"Bearer {outage_stack.admin_token}"}
        reply = httpx.get(f"{outage_stack.api_url}/admin/failpoints", headers=admin, timeout=10)
        assert reply.status_code == 200
    """
)


def _run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel built from this checkout (and its dependencies)."""
    place = tmp_path_factory.mktemp("installed-wheel")
    # The sdist first, then the wheel from it (what `python -m build` does): nothing the sdist
    # leaves out can reach the wheel, and no stale build folder of the checkout is packed.
    _ok(_run([sys.executable, "-m", "build", "--outdir", str(place / "dist"), str(CHECKOUT)], place))
    (wheel,) = (place / "dist").glob("outage_lab-*.whl")
    _ok(_run([sys.executable, "-m", "venv", str(place / "venv")], place))
    pip = [str(place / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    _ok(_run([*pip, "-c", str(CHECKOUT / "constraints.txt"), str(wheel)], place))
    return place


def test_the_installed_package_comes_from_the_wheel_not_the_checkout(installed, outage_stack):
    where = _ok(
        _run([str(installed / "venv/bin/python"), "-c", "import harness; print(harness.__file__)"], installed)
    )
    assert Path(where.strip()).is_relative_to(installed / "venv")


def test_outage_list_names_the_scenarios(installed, outage_stack):
    listing = _ok(_run([str(installed / "venv/bin/outage"), "list"], installed))
    assert "gorgias-2021-queue-cluster-down" in listing
    assert "worker-crash" in listing


def test_outage_status_reads_the_running_stack(installed, outage_stack):
    status = json.loads(_ok(_run([str(installed / "venv/bin/outage"), "status", "--json"], installed)))
    assert status["endpoints"]["api"] == outage_stack.api_url
    assert all(service["healthy"] for service in status["services"].values())


def test_the_pytest_plugin_works_from_the_installed_package(installed):
    # No `outage_stack` here: it holds the project's stack lock for the test, and the inner session
    # takes that lock for its own tests.
    project = installed / "user-project"
    project.mkdir(exist_ok=True)
    (project / "test_with_the_plugin.py").write_text(PLUGIN_TEST)
    result = _run(
        [str(installed / "venv/bin/pytest"), "-q", "-p", "no:cacheprovider", "--outage-use-running"], project
    )
    assert "2 passed" in _ok(result)
