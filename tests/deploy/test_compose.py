"""``deploy/docker-compose.yml`` as Docker Compose reads it (``docker compose config``, or
Debian's ``docker-compose``): valid, and wired the way docs/deploy.md describes. Rendering
needs no Docker engine and pulls no image."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.engine import DEBIAN_DOCKER, ROOT, missing

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
SITECHAT_SERVICES = ("api", "worker", "migrate")
DATA_SERVICES = {"postgres": "postgres-data", "redis": "redis-data", "qdrant": "qdrant-data"}
SECRET_VARIABLES = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "QDRANT_API_KEY")


def compose_command() -> list[str]:
    """``docker compose`` (the v2 plugin) when it answers, else ``docker-compose``."""
    for cli in dict.fromkeys(c for c in (shutil.which("docker"), DEBIAN_DOCKER) if c):
        if not os.access(cli, os.X_OK):
            continue
        plugin = subprocess.run([cli, "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return [cli, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is None:
        missing("neither `docker compose` nor docker-compose (apt-get install docker-compose)")
    return [standalone]


def compose_config(env_file: Path | str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    env["SITECHAT_ENV_FILE"] = ENV_EXAMPLE.name  # the services' env_file, beside the file
    return subprocess.run(
        [*compose_command(), "--file", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    result = compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def services(rendered: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = rendered["services"]
    return found


def test_compose_renders_every_service_of_the_deployment(services: dict[str, Any]) -> None:
    assert set(services) == {"nginx", *SITECHAT_SERVICES, *DATA_SERVICES}


def test_several_api_replicas_one_worker_and_a_one_shot_migration(
    services: dict[str, Any],
) -> None:
    assert int(services["api"]["deploy"]["replicas"]) >= 2
    assert services["api"]["command"] == ["serve"]
    assert services["api"]["environment"]["SITECHAT_RUN_JOBS"] == "false"
    assert services["worker"]["command"] == ["worker"]
    assert "replicas" not in services["worker"].get("deploy", {})
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"


def test_every_server_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name in ("nginx", "api", *DATA_SERVICES):
        test = services[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    # The API's check asks readiness (PostgreSQL and Qdrant answer), with no curl in the image.
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    # The worker and the migration serve no HTTP: the image's check is turned off for them.
    for name in ("worker", "migrate"):
        assert services[name]["healthcheck"]["test"] == ["NONE"], name


def test_services_start_in_order_once_what_they_need_is_healthy(
    services: dict[str, Any],
) -> None:
    needs_data = {name: "service_healthy" for name in DATA_SERVICES}
    for name in ("api", "worker"):
        conditions = {k: v["condition"] for k, v in services[name]["depends_on"].items()}
        assert conditions == {**needs_data, "migrate": "service_completed_successfully"}, name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["nginx"]["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_data_lives_in_named_volumes(rendered: dict[str, Any], services: dict[str, Any]) -> None:
    assert set(rendered["volumes"]) == set(DATA_SERVICES.values())
    for name, volume in DATA_SERVICES.items():
        mounts = [str(m) if isinstance(m, str) else m["source"] for m in services[name]["volumes"]]
        assert any(m.startswith(volume) for m in mounts), (name, mounts)
    # sitechat's own containers keep nothing: read-only, scratch space in memory.
    for name in SITECHAT_SERVICES:
        assert services[name]["read_only"] is True
        assert "/tmp" in services[name]["tmpfs"]


def test_settings_and_secrets_come_from_the_env_file(services: dict[str, Any]) -> None:
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert "SITECHAT_VISITOR_TOKEN_SECRET" in example
    for name in SITECHAT_SERVICES:
        environment = services[name]["environment"]
        for key, value in example.items():
            assert environment[key] == value, (name, key)
        assert environment["SITECHAT_ENVIRONMENT"] == "production"
        password = example["POSTGRES_PASSWORD"]
        assert environment["SITECHAT_DATABASE_URL"].startswith(f"postgresql://sitechat:{password}@")
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert raw["x-sitechat"]["env_file"] == "${SITECHAT_ENV_FILE:-.env}"
    # No secret is written in the compose file itself: each one is a required variable.
    text = COMPOSE_FILE.read_text()
    for variable in SECRET_VARIABLES:
        assert f"${{{variable}:?" in text, variable
    assert "change-me" not in text


def test_without_the_secrets_compose_refuses_to_render(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose_config(empty)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_nginx_renders_the_repositorys_template_and_is_the_only_published_port(
    services: dict[str, Any],
) -> None:
    nginx = services["nginx"]
    mounts = [
        str(m) if isinstance(m, str) else f"{m['source']}:{m['target']}" for m in nginx["volumes"]
    ]
    template = str(ROOT / "nginx" / "sitechat.conf.template")
    assert any(m.startswith(f"{template}:/etc/nginx/templates/") for m in mounts), mounts
    widget = str(ROOT / "backend" / "sitechat" / "api" / "web" / "static")
    assert any(m.startswith(f"{widget}:/srv/sitechat/widget") for m in mounts), mounts
    environment = nginx["environment"]
    assert environment["SITECHAT_UPSTREAM_SERVERS"] == "server api:8000;"
    assert environment["SITECHAT_WIDGET_DIR"] == "/srv/sitechat/widget"
    assert environment["NGINX_ENVSUBST_FILTER"] == "^SITECHAT_"  # nginx's $variables stay
    template_names = set(part.split("}")[0] for part in Path(template).read_text().split("${")[1:])
    assert template_names <= set(environment), template_names - set(environment)
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["nginx"]
