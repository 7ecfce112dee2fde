"""The real answer judge (Qwen2.5-Coder-1.5B-Instruct, ``make judge``) behind the extractive
provider: it reads a paraphrase whose key word no document uses and lets it be answered, and
it turns down a near miss. A developer without the file may skip; CI runs ``make judge``
first and never skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sitechat.config import Settings
from tests.api.test_answer_check import checked
from tests.conftest import running_app
from tests.support.sse_client import parse_body

JUDGE = Path(__file__).parents[2] / "models" / "answer-judge.gguf"
STREAM = "/api/public/chat/stream"

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        not JUDGE.is_file() and os.environ.get("CI") != "true",
        reason="no answer judge: run `make judge`",
    ),
]


@pytest.fixture
def judged(settings: Settings) -> Settings:
    values = settings.model_dump()
    values.update(
        answer_judge_model_path=str(JUDGE),
        # a shared CPU reads slowly; the verdict is what is tested here, not the speed
        answer_judge_timeout_seconds=300,
        wordnet_dir=None,
    )
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_a_paraphrase_is_answered_and_a_near_miss_is_not(judged: Settings) -> None:
    yes, no = checked("answer-judge", "yes"), checked("answer-judge", "no")
    async with running_app(judged) as harness:
        refund = await harness.client.post(
            STREAM, json={"message": "Is my money refunded?", "chatbot_id": "shop"}
        )
        far = await harness.client.post(
            STREAM, json={"message": "Do you ship to Australia?", "chatbot_id": "shop"}
        )

    answered = parse_body(refund.text)[-1].data
    assert answered is not None and answered["fallback"] is False
    assert "full refund" in answered["content"]
    assert answered["usage"]["answer_check"]["prompt_tokens"] > 0
    assert answered["usage"]["answer_check"]["completion_tokens"] >= 1

    refused = parse_body(far.text)[-1].data
    assert refused is not None and refused["fallback"] is True
    assert refused["context_quality"]["answerability"] == "unanswerable"
    assert "australia" in refused["context_quality"]["unsupported_terms"]
    assert "answer_check" in refused["usage"]  # the judge was asked, and said no
    # what an operator sees: the judge's verdicts and how long each took
    assert checked("answer-judge", "yes") == yes + 1
    assert checked("answer-judge", "no") == no + 1
