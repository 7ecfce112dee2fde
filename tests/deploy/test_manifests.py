"""The Kubernetes manifests: each overlay of ``deploy/kubernetes`` rendered by ``kubectl
kustomize``, validated strictly against Kubernetes' own schemas (``kubernetes-validate``, for
the oldest and the newest version it ships that the manifests target), and checked for what
makes sitechat run well there: probes, a termination grace period longer than the drain,
streaming through ingress-nginx, an autoscaler, and pods that run unprivileged."""

from __future__ import annotations

import base64
import shutil
import subprocess
from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from sitechat.api.shutdown import STOP_SECONDS
from sitechat.config import Settings
from tests.deploy.engine import ROOT, missing

KUSTOMIZE_ROOT = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("production", "staging")
NAMESPACES = {"production": "sitechat", "staging": "sitechat-staging"}
# The oldest Kubernetes the manifests target (autoscaling/v2, policy/v1, seccompProfile, all
# GA by 1.30) and the newest kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
INGRESS = "nginx.ingress.kubernetes.io/"


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        missing("kubectl is not installed (Debian 12 has no package: see .ci/run)")
    return found


@cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZE_ROOT / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"].startswith(name):
            return doc
    raise AssertionError(f"no {kind} {name}: {[(d['kind'], d['metadata']['name']) for d in docs]}")


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name
    )
    return found


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def docs(overlay: str) -> tuple[dict[str, Any], ...]:
    return render(f"overlays/{overlay}")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_resource_is_valid_kubernetes(
    docs: tuple[dict[str, Any], ...], version: str
) -> None:
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validation_is_strict_about_unknown_fields() -> None:
    deployment = find(render("overlays/production"), "Deployment", "sitechat-api")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"periodSeconds": 5}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_base_renders_on_its_own() -> None:
    kinds = sorted(doc["kind"] for doc in render("base"))
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Ingress",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceAccount",
        ]
    )


def test_everything_lands_in_the_overlays_namespace(
    overlay: str, docs: tuple[dict[str, Any], ...]
) -> None:
    for doc in docs:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == NAMESPACES[overlay]
        else:
            assert doc["metadata"]["namespace"] == NAMESPACES[overlay], doc["metadata"]["name"]


def test_the_api_is_probed_on_readyz_and_healthz(docs: tuple[dict[str, Any], ...]) -> None:
    api = container(find(docs, "Deployment", "sitechat-api"), "api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert api["args"] == ["serve"]
    assert {"name": "SITECHAT_RUN_JOBS", "value": "false"} in api["env"]


def test_pods_get_longer_to_stop_than_the_drain_takes(docs: tuple[dict[str, Any], ...]) -> None:
    """preStop sleep (the endpoint is removed first), then SIGTERM: answers in flight get
    SITECHAT_SHUTDOWN_GRACE_SECONDS, the rest STOP_SECONDS to be stored; all within the
    termination grace period, or the kubelet's SIGKILL cuts them."""
    config = find(docs, "ConfigMap", "sitechat-config")["data"]
    grace = float(config["SITECHAT_SHUTDOWN_GRACE_SECONDS"])
    deployment = find(docs, "Deployment", "sitechat-api")
    pre_stop = container(deployment, "api")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + grace + STOP_SECONDS
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > needed
    worker = find(docs, "Deployment", "sitechat-worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] > grace


def test_the_ingress_streams_through_ingress_nginx(docs: tuple[dict[str, Any], ...]) -> None:
    ingress = find(docs, "Ingress", "sitechat")
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert annotations[INGRESS + "proxy-buffering"] == "off"
    assert int(annotations[INGRESS + "proxy-read-timeout"]) >= 300
    assert int(annotations[INGRESS + "proxy-send-timeout"]) >= 300
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = find(docs, "Service", "sitechat-api")
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in [p["name"] for p in service["spec"]["ports"]]


def test_the_api_scales_horizontally(overlay: str, docs: tuple[dict[str, Any], ...]) -> None:
    hpa = find(docs, "HorizontalPodAutoscaler", "sitechat-api")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "sitechat-api",
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    if overlay == "production":
        assert hpa["minReplicas"] >= 3 and hpa["maxReplicas"] >= 10
    assert find(docs, "Deployment", "sitechat-worker")["spec"]["replicas"] == 1


def test_pods_run_unprivileged_with_read_only_root(docs: tuple[dict[str, Any], ...]) -> None:
    for name in ("sitechat-api", "sitechat-worker"):
        pod = find(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"] + pod.get("initContainers", []):
            security = c["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, c["name"]
            assert security["allowPrivilegeEscalation"] is False, c["name"]
            assert security["capabilities"]["drop"] == ["ALL"], c["name"]
            assert "/tmp" in [m["mountPath"] for m in c["volumeMounts"]], c["name"]


def test_pods_read_the_generated_config_and_secret(docs: tuple[dict[str, Any], ...]) -> None:
    config = find(docs, "ConfigMap", "sitechat-config")["metadata"]["name"]
    secret = find(docs, "Secret", "sitechat-secrets")["metadata"]["name"]
    for name in ("sitechat-api", "sitechat-worker"):
        pod = find(docs, "Deployment", name)["spec"]["template"]["spec"]
        for c in pod["containers"] + pod.get("initContainers", []):
            sources = c["envFrom"]
            assert {"configMapRef": {"name": config}} in sources, c["name"]
            assert {"secretRef": {"name": secret}} in sources, c["name"]


def test_the_placeholder_secrets_stop_sitechat_from_starting(
    docs: tuple[dict[str, Any], ...],
) -> None:
    """Applied unchanged, the pods crash at start instead of running with published secrets."""
    values = dict(find(docs, "ConfigMap", "sitechat-config")["data"])
    secret = find(docs, "Secret", "sitechat-secrets")["data"]
    values.update({k: base64.b64decode(v).decode() for k, v in secret.items()})
    assert values["SITECHAT_ENVIRONMENT"] == "production"
    fields = {k.removeprefix("SITECHAT_").lower(): v for k, v in values.items()}
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    # With real secrets the same settings are accepted.
    fields.update(visitor_token_secret="s" * 32, bootstrap_admin_key="b" * 32)
    Settings(_env_file=None, **fields)  # type: ignore[call-arg]
