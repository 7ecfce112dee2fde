"""The README's command-line flow while ``sitechat serve`` runs on the same data dir (the
embedded defaults: SQLite and Qdrant Edge, which one process at a time may open).

Regression for issue 10: ``sitechat org create`` beside a running server failed with "Search
is not available right now", because every command opened the index the server held. Now
commands that never search never open it, and ``ingest`` only queues its documents for the
server's job runner, which indexes them into the index it holds: the server answers from
them at once, with no restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ingestion.site import Site
from tests.support.processes import Server, run_cli, sitechat_serve


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SITECHAT_ENVIRONMENT": "test",
        "SITECHAT_DATA_DIR": str(tmp_path / "data"),
        "SITECHAT_DEFAULT_PROVIDER": "extractive",
        "SITECHAT_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    with sitechat_serve(env) as running:
        yield running


def one_line_error(result: object) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_every_readme_command_works_while_a_server_runs(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    org = run_cli("org", "create", "Acme", env=env)
    assert org.returncode == 0, org.stderr
    org_id = org.stdout.split("org id:")[1].split()[0]

    bot = run_cli(
        "chatbot", "create", "--org", org_id, "--name", "Acme help", "--id", "acme",
        "--any-origin", "--no-visitor-token", env=env,
    )  # fmt: skip
    assert bot.returncode == 0 and bot.stdout.strip() == "acme", bot.stderr

    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "parking.md").write_text("# Parking\n\nParking in the Acme garage is free after 6 pm.\n")
    (kb / "opening.txt").write_text("Opening hours\n\nThe Acme shop opens at 9 am on Sundays.\n")
    files = run_cli("ingest", "acme", str(kb), env=env)
    assert files.returncode == 0, files.stderr
    assert "2 documents ready, 0 failed" in files.stdout

    with Site() as site:
        site.html("/lids", "Spare lids", "Spare lids for the Acme kettle cost seven euros.")
        page = run_cli(
            "ingest", "acme", site.url("/lids"), "--allow-network", "127.0.0.1/32", env=env
        )
    assert page.returncode == 0, page.stderr
    assert "1 documents ready, 0 failed" in page.stdout

    assert run_cli("db", "upgrade", env=env).returncode == 0
    demo = run_cli("demo", env=env)
    assert demo.returncode == 0 and "demo ready" in demo.stdout, demo.stderr

    # The running server answers from what was just ingested: no restart.
    for question, fact, title in [
        ("Is parking free in the garage?", "free after 6 pm", "Parking"),
        ("How much do spare lids cost?", "seven euros", "Spare lids"),
    ]:
        answer = httpx.post(
            f"{server.url}/api/public/chat",
            json={"message": question, "chatbot_id": "acme"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert fact in body["content"]
        assert title in {source["title"] for source in body["sources"]}
    demo_answer = httpx.post(
        f"{server.url}/api/public/chat",
        json={"message": "How do I embed the widget?", "chatbot_id": "demo"},
        timeout=30,
    )
    assert demo_answer.status_code == 200 and demo_answer.json()["sources"]


def test_a_second_server_on_the_same_data_dir_refuses_in_one_line(
    server: Server, env: dict[str, str]
) -> None:
    second = run_cli("serve", "--port", "1", env=env, timeout=60)
    line = one_line_error(second)
    assert "holds the embedded index" in line


def test_serve_with_several_workers_on_the_embedded_defaults_refuses_in_one_line(
    env: dict[str, str],
) -> None:
    refused = run_cli("serve", "--workers", "2", env=env, timeout=60)
    line = one_line_error(refused)
    assert "SITECHAT_QDRANT_URL" in line and "SITECHAT_REDIS_URL" in line
