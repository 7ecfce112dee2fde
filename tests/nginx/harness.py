"""Render ``nginx/sitechat.conf.template`` and run the real nginx (Debian's package) on loopback.

nginx runs in the foreground (``daemon off``) with a prefix in a temp dir: pid file, logs and
temp paths all live there, so no system path is written and several runs can coexist.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.widget.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "nginx" / "sitechat.conf.template"
SHIPPED = ROOT / "nginx" / "sitechat.conf"
NGINX = "/usr/sbin/nginx"
IN_CI = os.environ.get("CI", "").lower() == "true"

# The values nginx/sitechat.conf is rendered with (see nginx/README.md).
DEFAULTS: dict[str, str] = {
    "SITECHAT_LISTEN": "80",
    "SITECHAT_SERVER_NAME": "_",
    "SITECHAT_UPSTREAM_SERVERS": "server 127.0.0.1:8000;\n    server 127.0.0.1:8001;",
    "SITECHAT_WIDGET_DIR": "/srv/sitechat/widget",
}


def nginx_binary() -> str:
    """The nginx binary; skips locally and fails in CI when it is missing."""
    path = NGINX if os.access(NGINX, os.X_OK) else shutil.which("nginx")
    if path is None:
        if IN_CI:
            pytest.fail("nginx is not installed (apt-get install nginx; .ci/run does this)")
        pytest.skip("nginx is not installed")
    return path


def render(template: str, values: Mapping[str, str]) -> str:
    """``${NAME}`` placeholders filled in; a placeholder without a value is an error, and
    nginx's own ``$variables`` are left alone."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for ${{{name}}}")
        return values[name]

    return re.sub(r"\$\{([A-Z_]+)\}", fill, template)


def upstream_lines(ports: Sequence[int]) -> str:
    return "\n    ".join(f"server 127.0.0.1:{port};" for port in ports)


def main_config(prefix: Path, site_conf: Path) -> str:
    """A complete nginx.conf around the site config, with every path under ``prefix``."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the temp dir
    return f"""{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site_conf};
}}
"""


def write_config(prefix: Path, site: str) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    site_conf = prefix / "sitechat.conf"
    site_conf.write_text(site)
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site_conf))
    return conf


def check_config(binary: str, prefix: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclass(frozen=True)
class RunningNginx:
    port: int
    prefix: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@asynccontextmanager
async def run_nginx(
    prefix: Path,
    *,
    upstream_ports: Sequence[int],
    widget_dir: Path = ROOT / "backend" / "sitechat" / "api" / "web" / "static",
) -> AsyncIterator[RunningNginx]:
    """nginx in front of ``upstream_ports`` on a free loopback port, stopped on exit."""
    binary = nginx_binary()
    port = free_port()
    site = render(
        TEMPLATE.read_text(),
        {
            "SITECHAT_LISTEN": f"127.0.0.1:{port}",
            "SITECHAT_SERVER_NAME": "localhost",
            "SITECHAT_UPSTREAM_SERVERS": upstream_lines(upstream_ports),
            "SITECHAT_WIDGET_DIR": str(widget_dir),
        },
    )
    conf = write_config(prefix, site)
    checked = await asyncio.to_thread(check_config, binary, prefix, conf)
    assert checked.returncode == 0, checked.stderr
    process = await asyncio.create_subprocess_exec(
        binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
        "-g", "daemon off;",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    running = RunningNginx(port, prefix)
    try:
        for _ in range(250):
            if process.returncode is not None:
                raise RuntimeError("nginx exited at startup:\n" + running.error_log())
            if await _port_open(port):
                break
            await asyncio.sleep(0.02)
        else:
            raise RuntimeError("nginx did not start listening in 5 s\n" + running.error_log())
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown: open streams are not waited for
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
