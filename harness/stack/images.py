"""Building the stack's images on a machine that may have no container registry.

One recipe for everybody: the images build `FROM` a Debian bookworm base. With a registry that is
`debian:bookworm-slim`; without one, an equivalent base is made locally with `debootstrap` and
`docker import`. Python wheels are downloaded on the host for the Docker engine's architecture, so
image builds need no package index. The recipes ship inside the package (harness/stack/recipes), so
an installed wheel builds the same images as a source checkout.
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

import services

RECIPES = Path(__file__).resolve().parent / "recipes" / "images"
# The services' pinned runtime requirements ship inside the `services` package.
REQUIREMENTS = Path(services.__file__).resolve().parent / "requirements.txt"
SERVICES_SOURCE = Path(services.__file__).resolve().parent
REGISTRY_BASE = "debian:bookworm-slim"
LOCAL_BASE = "outage-lab/debian:bookworm"
DEBIAN_MIRROR = os.environ.get("OUTAGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SERVICE_IMAGES = ("outage-lab/rabbitmq", "outage-lab/redis", "outage-lab/gateway", "outage-lab/app")
# pip's platform tags for each architecture the Docker engine may report (bookworm has glibc 2.36).
MANYLINUX_TAGS = {
    "x86_64": ("manylinux_2_28", "manylinux_2_17", "manylinux2014", "manylinux_2_5", "manylinux1"),
    "aarch64": ("manylinux_2_28", "manylinux_2_17", "manylinux2014"),
}
ENGINE_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
# Images of short-lived helpers the harness starts itself (not compose services).
TOOL_IMAGES = ("nettools",)


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


def engine_architecture(client: docker.DockerClient) -> str:
    """The CPU architecture the images run on: the Docker engine's, not necessarily this process's."""
    reported = str(client.info().get("Architecture", "")).lower()
    try:
        return ENGINE_ARCHITECTURES[reported]
    except KeyError:
        raise ImageBuildError(
            f"the Docker engine runs on {reported!r}; wheels exist for {', '.join(MANYLINUX_TAGS)}"
        ) from None


def platform_tags(architecture: str) -> list[str]:
    return [f"{tag}_{architecture}" for tag in MANYLINUX_TAGS[architecture]]


def cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "outage-lab"


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_wheels(architecture: str) -> Path:
    """The services' wheels for the image's Python (CPython 3.11, manylinux on this architecture)."""
    wheels = cache_root() / "wheels" / architecture
    stamp = wheels / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == _requirements_digest():
        return wheels
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    _say(f"downloading the services' Python wheels for {architecture}")
    platforms = [argument for tag in platform_tags(architecture) for argument in ("--platform", tag)]
    subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "download", "-q", "-d", str(wheels), "--only-binary=:all:"),
            *("--implementation", "cp", "--python-version", "3.11", *platforms),
            *("-r", str(REQUIREMENTS)),
        ],
        check=True,
    )
    stamp.write_text(_requirements_digest())
    return wheels


def _app_context(into: Path, wheels: Path) -> Path:
    """The app image's build context: its recipe, the services' source and pins, the wheels."""
    shutil.copy2(RECIPES / "app" / "Dockerfile", into / "Dockerfile")
    shutil.copy2(RECIPES / "app" / "clock-offset.sh", into / "clock-offset.sh")
    shutil.copy2(REQUIREMENTS, into / "requirements.txt")
    shutil.copytree(wheels, into / "wheels", ignore=shutil.ignore_patterns(".*"))
    shutil.copytree(SERVICES_SOURCE, into / "services", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def _docker_build(context: Path, image: str, base: str, force: bool) -> None:
    _say(f"building {image}")
    command = ["docker", "build", "-q", "-t", image, "--build-arg", f"BASE_IMAGE={base}"]
    result = subprocess.run(
        [*command, *(["--no-cache"] if force else []), str(context)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ImageBuildError(f"building {image} failed:\n{(result.stdout + result.stderr)[-3000:]}")


def build_images(force: bool = False) -> None:
    """Build every image of the stack from the recipes shipped in the package (layers are cached)."""
    client = docker.from_env()
    base = ensure_base_image(client)
    wheels = ensure_wheels(engine_architecture(client))
    tag = image_tag()
    _say(f"building images from {base}")
    for name in ("rabbitmq", "redis", "gateway"):
        _docker_build(RECIPES / name, f"outage-lab/{name}:{tag}", base, force)
    with tempfile.TemporaryDirectory(prefix="outage-app-context-") as staging:
        _docker_build(_app_context(Path(staging), wheels), f"outage-lab/app:{tag}", base, force)
    for name in TOOL_IMAGES:
        _docker_build(RECIPES / name, f"outage-lab/{name}:{tag}", base, force)


def images_present() -> bool:
    client = docker.from_env()
    names = (*SERVICE_IMAGES, *(f"outage-lab/{tool}" for tool in TOOL_IMAGES))
    return all(_image_exists(client, f"{name}:{image_tag()}") for name in names)


def tool_image(name: str) -> str:
    """The tag of one of the harness's helper images (built by `outage build`)."""
    return f"{name}:{image_tag()}"


def image_tag() -> str:
    return os.environ.get("OUTAGE_IMAGE_TAG", "dev")
