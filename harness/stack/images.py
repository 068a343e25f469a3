"""Building the stack's images on a machine that may have no container registry.

One recipe for everybody: the images build `FROM` a Debian bookworm base. With a registry that is
`debian:bookworm-slim`; without one, an equivalent base is made locally with `debootstrap` and
`docker import`. Python wheels are downloaded on the host, so image builds need no package index.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
import docker.errors

from harness.stack.compose import run_compose

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / "compose" / ".build" / "wheels"
REQUIREMENTS = ROOT / "services" / "requirements.txt"
REGISTRY_BASE = "debian:bookworm-slim"
LOCAL_BASE = "outage-lab/debian:bookworm"
DEBIAN_MIRROR = os.environ.get("OUTAGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SERVICE_IMAGES = ("outage-lab/rabbitmq", "outage-lab/redis", "outage-lab/gateway", "outage-lab/app")
# Images of short-lived helpers the harness starts itself (not compose services).
TOOL_IMAGES = {"outage-lab/nettools": ROOT / "compose" / "images" / "nettools"}


class ImageBuildError(RuntimeError):
    pass


def _say(text: str) -> None:
    print(f"[build] {text}", file=sys.stderr, flush=True)


def _image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _try_pull(name: str) -> bool:
    try:
        result = subprocess.run(["docker", "pull", name], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _debootstrap_base() -> None:
    """Make a minimal bookworm root file system and import it as an image."""
    if shutil.which("debootstrap") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise ImageBuildError(
                "no registry image and no debootstrap: install it (apt-get install debootstrap) or "
                "set OUTAGE_BASE_IMAGE to a Debian bookworm image you have"
            )
        _say("installing debootstrap from Debian's packages")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True)
    if os.geteuid() != 0:
        raise ImageBuildError("debootstrap needs root: run `make setup` as root or set OUTAGE_BASE_IMAGE")
    with tempfile.TemporaryDirectory(prefix="outage-rootfs-") as rootfs:
        _say(f"debootstrap bookworm from {DEBIAN_MIRROR} (about a minute)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Same trimming as the slim image: no docs, no apt lists.
        for leftover in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "var/cache/apt/archives"):
            shutil.rmtree(Path(rootfs, leftover), ignore_errors=True)
        Path(rootfs, "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-", LOCAL_BASE], stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL
        )
        if tar.wait() != 0:
            raise ImageBuildError("packing the bookworm root file system failed")
    _say(f"imported {LOCAL_BASE}")


def ensure_base_image(client: docker.DockerClient) -> str:
    """The base image to build from: a configured one, the registry's, or a local debootstrap."""
    configured = os.environ.get("OUTAGE_BASE_IMAGE")
    if configured:
        return configured
    for candidate in (REGISTRY_BASE, LOCAL_BASE):
        if _image_exists(client, candidate):
            return candidate
    if _try_pull(REGISTRY_BASE):
        return REGISTRY_BASE
    _say(f"{REGISTRY_BASE} cannot be pulled here; building an equivalent base locally")
    _debootstrap_base()
    return LOCAL_BASE


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_wheels() -> None:
    """Download the services' wheels for the image's Python (CPython 3.11, manylinux x86_64)."""
    stamp = WHEELS / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == _requirements_digest():
        return
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    _say("downloading the services' Python wheels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "-d",
            str(WHEELS),
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux_2_5_x86_64",
            "--platform",
            "manylinux1_x86_64",
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    stamp.write_text(_requirements_digest())


def build_images(force: bool = False) -> None:
    """Build every image of the stack (compose caches layers, so a rebuild is quick)."""
    client = docker.from_env()
    base = ensure_base_image(client)
    ensure_wheels()
    _say(f"building images from {base}")
    run_compose(["build", *(["--no-cache"] if force else [])], env={"OUTAGE_BASE_IMAGE": base})
    for name, context in TOOL_IMAGES.items():
        tag = f"{name}:{image_tag()}"
        _say(f"building {tag}")
        subprocess.run(
            [
                "docker",
                "build",
                "-q",
                "-t",
                tag,
                "--build-arg",
                f"BASE_IMAGE={base}",
                *(["--no-cache"] if force else []),
                str(context),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def images_present() -> bool:
    client = docker.from_env()
    return all(_image_exists(client, f"{name}:{image_tag()}") for name in (*SERVICE_IMAGES, *TOOL_IMAGES))


def tool_image(name: str) -> str:
    """The tag of one of the harness's helper images (built by `outage build`)."""
    return f"{name}:{image_tag()}"


def image_tag() -> str:
    return os.environ.get("OUTAGE_IMAGE_TAG", "dev")
