"""``benchmarks.judge_auc``: the AUC it reports, and the score it reads off a real model (the
answer judge, ``make judge``; a developer without the file may skip, CI never does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.judge_auc import Judged, auc, report, score
from sitechat.chat.answer_check import check_request
from sitechat.domain import ChatbotConfig
from sitechat.llm.local_model import chat_template, messages_as_dicts
from sitechat.retrieval.base import Chunk, ScoredChunk

JUDGE = Path(__file__).parents[2] / "models" / "answer-judge.gguf"


def test_auc_counts_pairs_and_ties_half() -> None:
    assert auc([3.0, 2.0], [1.0, 0.0]) == 1.0
    assert auc([0.0], [1.0]) == 0.0
    assert auc([1.0, 0.0], [1.0]) == 0.25  # one tie (a half), one loss
    assert auc([], [1.0]) != auc([], [1.0])  # nan: nothing to compare


def test_the_report_counts_positive_scores_as_the_models_yes() -> None:
    judged = [
        Judged("shop", "in_scope", "a", [], score=0.4),
        Judged("shop", "in_scope", "b", [], score=-0.2),
        Judged("shop", "out_of_scope", "c", [], score=0.1),
        Judged("shop", "out_of_scope", "d", [], score=-3.0),
        Judged("shop", "off_topic", "e", [], score=-1.0),
    ]
    lines = report(judged).splitlines()
    assert lines[0] == (
        "       shop: in scope 1/2 rescued, near misses 1/2 and off-topic 0/1 let through; AUC 0.75"
    )
    assert lines[1].startswith("        all: in scope 1/2 rescued")


@pytest.mark.local_model
@pytest.mark.skipif(
    not JUDGE.is_file() and os.environ.get("CI") != "true", reason="no answer judge: make judge"
)
def test_the_judge_scores_an_answer_above_a_question_from_elsewhere() -> None:
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(JUDGE), n_ctx=2048, verbose=False)
    render = chat_template(llama)
    config = ChatbotConfig(id="shop", org_id="org", name="Spoke & Chain")
    passage = ScoredChunk(
        Chunk(
            id="c1",
            chatbot_id="shop",
            document_id="d1",
            position=0,
            text="Refunds are paid to the card you used within 14 days of the return.",
            title="Returns",
        ),
        1.0,
    )

    def scored(question: str) -> float:
        request = check_request(config, question, [passage], None)
        return score(llama, render, messages_as_dicts(request.messages))

    try:
        assert scored("How long does a refund take?") > 0 > scored("What is the capital of France?")
    finally:
        llama.close()
