"""The Docker engine and sitechat's API-only image, built once per test session.

The build's time and the image's size go to ``test-artifacts/deploy-image.json``: a cold
build (no layer cache) and a warm one (only the code changed) differ by minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.deploy.engine import (
    ROOT,
    BuiltImage,
    Docker,
    build_image,
    ensure_base_image,
    ensure_engine,
)

IMAGE_TAG = "sitechat:test"


@pytest.fixture(scope="session")
def docker() -> Docker:
    return ensure_engine()


@pytest.fixture(scope="session")
def base_image(docker: Docker) -> str:
    return ensure_base_image(docker)


@pytest.fixture(scope="session")
def image(
    docker: Docker, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BuiltImage]:
    built = build_image(
        docker, IMAGE_TAG, base_image=base_image, scratch=tmp_path_factory.mktemp("build")
    )
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "deploy-image.json").write_text(
        json.dumps(
            {
                "image": built.tag,
                "base_image": base_image,
                "extras": "",
                "build_seconds": round(built.seconds, 1),
                "size_bytes": built.size_bytes,
                "size_mb": round(built.size_bytes / 1e6, 1),
            },
            indent=2,
        )
        + "\n"
    )
    yield built
