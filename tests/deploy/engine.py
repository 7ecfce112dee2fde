"""The Docker engine for the deployment tests: find the CLI, start ``dockerd`` when it is not
running, make the local Debian base image, build sitechat's image and run containers.

Only host networking is used: the daemon this module starts has no bridge (``--bridge=none``,
no iptables rules), every container runs with ``--network host`` and every build with
``--network host``, so test traffic stays on 127.0.0.1.

A missing tool skips a test on a developer's machine and fails it when ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"

# Debian's docker.io CLI builds with its built-in BuildKit (DOCKER_BUILDKIT=1); a newer CLI
# elsewhere on PATH may need the buildx plugin, which Debian does not package.
DEBIAN_DOCKER = "/usr/bin/docker"
DOCKERD_FLAGS = ("--bridge=none", "--iptables=false", "--ip6tables=false")
DOCKERD_LOG = Path("/var/log/sitechat-dockerd.log")
TEST_LABEL = "org.sitechat.test=deploy"
BUILD_TIMEOUT_SECONDS = 1800


def missing(message: str) -> NoReturn:
    """Skip on a developer's machine, fail in CI (a service test never skips there)."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def docker_cli() -> str:
    if os.access(DEBIAN_DOCKER, os.X_OK):
        return DEBIAN_DOCKER
    found = shutil.which("docker")
    if found is None:
        missing("no docker CLI (apt-get install docker.io; .ci/run does this)")
    return found


@dataclass(frozen=True)
class Docker:
    cli: str

    def run(
        self,
        *args: str,
        timeout: float = 120,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.cli, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args[:3])} ... exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def image_exists(self, tag: str) -> bool:
        return self.run("image", "inspect", tag, check=False).returncode == 0

    def image_size(self, tag: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())

    def inspect(self, container: str) -> dict[str, object]:
        data: list[dict[str, object]] = json.loads(self.run("inspect", container).stdout)
        return data[0]

    def remove(self, *containers: str) -> None:
        if containers:
            self.run("rm", "--force", "--volumes", *containers, check=False)


def _daemon_answers(cli: str) -> bool:
    try:
        result = subprocess.run([cli, "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def ensure_engine() -> Docker:
    """The Docker engine, started (as root, host networking only) when it is not running."""
    cli = docker_cli()
    if _daemon_answers(cli):
        return Docker(cli)
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.access(dockerd, os.X_OK):
        missing("dockerd is not installed (apt-get install docker.io; .ci/run does this)")
    if os.geteuid() != 0:
        missing("dockerd is not running and only root can start it")
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(
            [dockerd, *DOCKERD_FLAGS],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives this test run, like a service
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _daemon_answers(cli):
            return Docker(cli)
        time.sleep(0.5)
    missing(f"dockerd did not answer within 60 s (log: {DOCKERD_LOG})")


def os_release() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value.strip().strip('"')
    return values


def ensure_base_image(docker: Docker) -> str:
    """``sitechat-base:<release>``: this machine's Debian release, debootstrap'd once and
    imported (deploy/debian-base-image.sh); an existing image is reused."""
    release = os_release().get("VERSION_CODENAME", "")
    if not release:
        missing("no VERSION_CODENAME in /etc/os-release: not a Debian-like machine")
    tag = f"sitechat-base:{release}"
    if docker.image_exists(tag):
        return tag
    if shutil.which("debootstrap") is None and not os.access("/usr/sbin/debootstrap", os.X_OK):
        missing("debootstrap is not installed (apt-get install debootstrap; .ci/run does this)")
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "debian-base-image.sh"), tag],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "DOCKER": docker.cli, "PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tag


def host_ca_bundle() -> Path:
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    missing("no CA bundle on this machine (SSL_CERT_FILE or /etc/ssl/certs)")


def host_pip_config(directory: Path) -> Path | None:
    """A pip.conf with the package indexes this machine's pip uses, when they are not pip's
    default; local (file:) indexes are left out, the container cannot see them. Passed to
    the build as a secret, so no index name ends up in a committed file or a layer."""
    result = subprocess.run(
        ["python3", "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    index_url = ""
    extra: list[str] = []
    for line in result.stdout.splitlines():
        key, _, raw = line.partition("=")
        urls = [u for u in raw.strip().strip("'\"").split() if u.startswith(("http:", "https:"))]
        name = key.rsplit(".", 1)[-1]
        if name == "index-url" and urls:
            index_url = urls[0]
        elif name == "extra-index-url":
            extra.extend(urls)
    if not index_url and not extra:
        return None
    lines = ["[global]"]
    if index_url:
        lines.append(f"index-url = {index_url}")
    if extra:
        lines.append("extra-index-url = " + " ".join(dict.fromkeys(extra)))
    path = directory / "pip.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    seconds: float
    size_bytes: int


def build_image(
    docker: Docker,
    tag: str,
    *,
    base_image: str,
    scratch: Path,
    extras: str = "",
    timeout: float = BUILD_TIMEOUT_SECONDS,
) -> BuiltImage:
    """``deploy/Dockerfile`` built from the repository with the host's CA bundle (and pip
    index, if not the default) as secrets; the layer cache makes an unchanged rebuild quick."""
    args = [
        "build",
        "--network", "host",
        "--file", str(ROOT / "deploy" / "Dockerfile"),
        "--build-arg", f"BASE_IMAGE={base_image}",
        "--build-arg", f"EXTRAS={extras}",
        "--secret", f"id=ca,src={host_ca_bundle()}",
        "--label", TEST_LABEL,
        "--tag", tag,
    ]  # fmt: skip
    pip_conf = host_pip_config(scratch)
    if pip_conf is not None:
        args += ["--secret", f"id=pipconf,src={pip_conf}"]
    started = time.monotonic()
    docker.run(*args, str(ROOT), timeout=timeout, env={"DOCKER_BUILDKIT": "1"})
    seconds = time.monotonic() - started
    # Earlier builds of the test tag, now untagged; the layer cache stays.
    docker.run("image", "prune", "--force", "--filter", f"label={TEST_LABEL}", check=False)
    return BuiltImage(tag, seconds, docker.image_size(tag))


def run_container(
    docker: Docker,
    name: str,
    image: str,
    *,
    env_file: Path,
    args: Sequence[str] = (),
    mounts: Sequence[str] = (),
    healthcheck: bool = True,
) -> str:
    """A detached container on the host's network, with a read-only root file system and
    scratch space in memory, as the compose file and the Kubernetes manifests run it. The
    image's HEALTHCHECK runs every 2 s instead of every 15 s, so tests need not wait."""
    options = [
        "run", "--detach", "--name", name,
        "--network", "host",
        "--read-only",
        "--tmpfs", "/tmp",
        "--tmpfs", "/var/lib/sitechat:uid=10001,gid=10001,mode=0700",
        "--env-file", str(env_file),
        "--label", TEST_LABEL,
    ]  # fmt: skip
    options += ["--health-interval", "2s"] if healthcheck else ["--no-healthcheck"]
    for mount in mounts:
        options += ["--volume", mount]
    docker.run(*options, image, *args)
    return name


def wait_healthy(docker: Docker, container: str, timeout: float = 90) -> dict[str, object]:
    """Waits for the image's HEALTHCHECK to report healthy; fails with the logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = docker.inspect(container)["State"]
        assert isinstance(state, dict)
        if not state.get("Running"):
            break
        health = state.get("Health") or {}
        if health.get("Status") == "healthy":
            return health
        time.sleep(0.5)
    logs = docker.run("logs", "--tail", "80", container, check=False)
    raise AssertionError(
        f"{container} did not become healthy in {timeout} s:\n{logs.stdout}\n{logs.stderr}"
    )
