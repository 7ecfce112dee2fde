"""``GET /metrics``: Prometheus text after real answers, and not public.

It answers clients in ``metrics_allowed_networks`` (loopback by default), judged by the
address the gate resolves (so a visitor behind a trusted proxy is judged by their own), or
whoever presents the metrics token; anyone else gets 404. With several worker processes the
values of all of them are summed from ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from sitechat import metrics
from sitechat.api.app import create_app
from sitechat.config import Settings
from tests.conftest import running_app

QUESTION = {"message": "How long does delivery take?", "chatbot_id": "shop"}


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_after_one_answer_metrics_show_its_time_to_first_token(settings: Settings) -> None:
    async with running_app(settings) as h:
        before = (await h.client.get("/metrics")).text
        answer = await h.client.post("/api/public/chat/stream", json=QUESTION)
        assert answer.status_code == 200 and '"type":"complete"' in answer.text
        response = await h.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    name = "sitechat_time_to_first_token_seconds_count"
    assert (
        sample(text, name, provider="extractive") == sample(before, name, provider="extractive") + 1
    )
    assert re.search(r'sitechat_time_to_first_token_seconds_bucket\{.*le="0.1".*\}', text)
    completed = "sitechat_answers_total"
    assert (
        sample(text, completed, outcome="complete")
        == sample(before, completed, outcome="complete") + 1
    )
    assert sample(text, "sitechat_retrieval_seconds_count") >= 1
    assert sample(text, "sitechat_answer_duration_seconds_count", provider="extractive") >= 1
    assert "sitechat_active_streams" in text


async def test_a_fallback_and_a_gate_refusal_are_counted_by_kind(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_ip": "1/minute"})
    async with running_app(limited) as h:
        before = (await h.client.get("/metrics")).text
        off_topic = {"message": "zebra quantum chromodynamics", "chatbot_id": "shop"}
        await h.client.post("/api/public/chat", json=off_topic)
        refused = await h.client.post("/api/public/chat", json=off_topic)
        assert refused.status_code == 429
        text = (await h.client.get("/metrics")).text
    fallbacks = "sitechat_answers_total"
    assert (
        sample(text, fallbacks, outcome="fallback")
        == sample(before, fallbacks, outcome="fallback") + 1
    )
    refusals = "sitechat_gate_refusals_total"
    assert (
        sample(text, refusals, reason="rate_limited")
        == sample(before, refusals, reason="rate_limited") + 1
    )


async def test_metrics_are_hidden_from_other_networks_unless_they_bring_the_token(
    settings: Settings,
) -> None:
    guarded = settings.model_copy(
        update={
            "metrics_token": SecretStr("s3cret-metrics-token"),
            "trusted_proxies": ["127.0.0.1/32"],
        }
    )
    app = create_app(guarded)
    async with app.router.lifespan_context(app):
        outside = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=outside, base_url="http://sitechat.test") as c:
            assert (await c.get("/metrics")).status_code == 404
            wrong = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 404 and "sitechat_" not in wrong.text
            right = await c.get(
                "/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}
            )
            assert right.status_code == 200 and "sitechat_answers_total" in right.text
        proxy = httpx.ASGITransport(app=app, client=("127.0.0.1", 40001))
        async with httpx.AsyncClient(transport=proxy, base_url="http://sitechat.test") as c:
            # Through the trusted proxy (nginx on loopback): the visitor's address counts.
            forwarded = await c.get("/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
            assert forwarded.status_code == 404
            assert (await c.get("/metrics")).status_code == 200  # the proxy host itself
    assert "/metrics" not in app.openapi()["paths"]


def test_several_worker_processes_are_summed_in_one_scrape(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    record = (
        "from sitechat import metrics\n"
        "metrics.TIME_TO_FIRST_TOKEN.labels('openai').observe(0.2)\n"
        "metrics.ACTIVE_STREAMS.inc()\n"
    )
    for _worker in range(2):
        subprocess.run(
            [sys.executable, "-c", record],
            env={**os.environ, metrics.MULTIPROCESS_ENV: str(folder)},
            check=True,
            timeout=60,
        )
    old = os.environ.get(metrics.MULTIPROCESS_ENV)
    os.environ[metrics.MULTIPROCESS_ENV] = str(folder)
    try:
        text, _content_type = metrics.render()
    finally:
        if old is None:
            del os.environ[metrics.MULTIPROCESS_ENV]
        else:
            os.environ[metrics.MULTIPROCESS_ENV] = old
    body = text.decode()
    count = "sitechat_time_to_first_token_seconds_count"
    assert sample(body, count, provider="openai") == 2
