"""The examples ``/openapi.json`` shows for the admin API's bodies and path parameters.

They tell one story: Shop Inc, its chatbot ``shop`` and a day of its visitors. Examples that
appear inside others (a theme inside a chatbot, a budget inside an org) are built from the
smaller ones, so the document never contradicts itself.
"""

from __future__ import annotations

from typing import Any

_NOW = "2026-11-24T09:30:00Z"

# --- orgs and keys ----------------------------------------------------------------------------

ORG: dict[str, Any] = {"id": "0b6f1a52-3c3e-4a7e-9d0c-2f6f3d7a9b10", "name": "Shop Inc"}
ORG_CREATE: dict[str, Any] = {"name": "Shop Inc", "monthly_token_budget": 5_000_000}
ORG_UPDATE_BUDGET: dict[str, Any] = {"monthly_token_budget": 10_000_000}
ORG_UPDATE_NAME: dict[str, Any] = {"name": "Shop GmbH"}
BUDGET: dict[str, Any] = {
    "monthly_token_budget": 5_000_000,
    "used": {"prompt_tokens": 812_000, "completion_tokens": 95_500, "total_tokens": 907_500},
    "remaining": 4_092_500,
    "exceeded": False,
    "period": "2026-11",
}
ORG_OUT: dict[str, Any] = {**ORG, "created_at": _NOW, "budget": BUDGET}
KEY_CREATE: dict[str, Any] = {"name": "deploy script"}
KEY: dict[str, Any] = {
    "id": "4a0e6c1e-8f77-4d59-9a57-0f0c5d0e2b41",
    "name": "deploy script",
    "prefix": "sck_Q2x9aB7k",
    "created_at": _NOW,
    "last_used_at": None,
    "revoked_at": None,
}
NEW_KEY: dict[str, Any] = {**KEY, "key": "sck_Q2x9aB7kE3mZ0pW4vR8tY1uI6oP5aS2dF7gH9jK0lL"}
KEY_LIST: dict[str, Any] = {"keys": [KEY]}
ORG_CREATED: dict[str, Any] = {"org": ORG_OUT, "api_key": NEW_KEY}

# --- chatbots ---------------------------------------------------------------------------------

THEME: dict[str, Any] = {
    "primary_color": "#0b7285",
    "position": "bottom-right",
    "avatar_url": "https://shop.example/bot.png",
}
LIMITS: dict[str, Any] = {
    "per_ip": "20/minute",
    "per_visitor": "20/minute",
    "per_session": "12/minute",
}
MAX_STREAMS: dict[str, Any] = {"per_ip": 3, "per_chatbot": 50}
CHATBOT_CREATE: dict[str, Any] = {
    "id": "shop",
    "name": "Shop helper",
    "system_prompt": "You answer questions about Shop Inc's orders, shipping and returns.",
    "temperature": 0.2,
    "fallback_providers": ["extractive"],
    "greeting": "Hi! Ask me about shipping, returns or opening hours.",
    "starter_questions": ["When do orders ship?", "How do returns work?"],
    "theme": THEME,
    "answer_scope": "documents_only",
    "allowed_origins": ["https://shop.example", "https://www.shop.example"],
    "rate_limits": LIMITS,
    "monthly_token_budget": 2_000_000,
}
CHATBOT_UPDATE: dict[str, Any] = {"temperature": 0.5, "allowed_origins": ["https://shop.example"]}
CHATBOT_UPDATE_LIMITS: dict[str, Any] = {
    "rate_limits": {"per_ip": "10/minute"},
    "monthly_token_budget": None,
}
# General questions too ("what is a VAT number?"), marked as not from the shop's documents.
CHATBOT_UPDATE_SCOPE: dict[str, Any] = {"answer_scope": "documents_and_general"}
CHATBOT: dict[str, Any] = {
    **CHATBOT_CREATE,
    "org_id": ORG["id"],
    "provider": None,
    "model": None,
    "max_tokens": None,
    "fallback_message": "I don't know that yet.",
    "any_origin": False,
    "require_visitor_token": True,
    "rate_limits": {**LIMITS, "per_chatbot": "600/minute"},
    "max_streams": MAX_STREAMS,
    "created_at": _NOW,
    "updated_at": _NOW,
}
CHATBOT_LIST: dict[str, Any] = {"chatbots": [CHATBOT]}

# --- documents --------------------------------------------------------------------------------

DOCUMENT_TEXT: dict[str, Any] = {
    "title": "Opening hours",
    "text": "# Opening hours\n\nWe open at 9 am.",
}
DOCUMENT_URL: dict[str, Any] = {"url": "https://www.example.com/faq"}
DOCUMENT_CRAWL: dict[str, Any] = {
    "url": "https://www.example.com/",
    "crawl": {"max_pages": 50, "max_depth": 2, "sitemap": True},
}
DOCUMENT: dict[str, Any] = {
    "id": "3f1c2a9e-8d7b-4c55-9a0e-2b6f7d1e4c3a",
    "chatbot_id": "acme-help",
    "title": "Shipping and returns",
    "url": "https://www.example.com/shipping",
    "source_type": "html",
    "status": "done",
    "error": None,
    "chunk_count": 12,
    "progress": {"pages_total": 1, "pages_done": 1, "pages_failed": 0, "chunks": 12},
    "parent_id": None,
    "created_at": "2026-11-21T10:00:00Z",
    "updated_at": "2026-11-21T10:00:04Z",
}
DOCUMENT_LIST: dict[str, Any] = {"documents": [DOCUMENT]}

# --- conversations ----------------------------------------------------------------------------

CONVERSATION_SUMMARY: dict[str, Any] = {
    "id": "7d4c2f0e-1b5a-4a8e-8c61-5f3a2b9d0e17",
    "session_id": "f3b2c1d0e9a84b7c",
    "created_at": _NOW,
    "updated_at": "2026-11-24T09:31:12Z",
    "message_count": 4,
    "has_feedback": True,
}
CONVERSATION_PAGE: dict[str, Any] = {
    "conversations": [CONVERSATION_SUMMARY],
    "total": 1,
    "limit": 50,
    "offset": 0,
}
CONVERSATION: dict[str, Any] = {
    **CONVERSATION_SUMMARY,
    "message_count": 2,
    "messages": [
        {
            "id": "b1d0c9e8-7f6a-4b5c-9d8e-1f2a3b4c5d6e",
            "role": "user",
            "content": "When do orders ship?",
            "status": "complete",
            "created_at": _NOW,
            "sources": [],
            "context_quality": None,
            "usage": None,
            "ttft_ms": None,
            "error_code": None,
            "feedback": None,
        },
        {
            "id": "c2e1d0f9-8a7b-4c6d-8e9f-2a3b4c5d6e7f",
            "role": "assistant",
            "content": "Orders ship within two business days [1].",
            "status": "complete",
            "created_at": "2026-11-24T09:30:01Z",
            "sources": [
                {
                    "number": 1,
                    "title": "Shipping",
                    "url": None,
                    "snippet": "Orders ship within two business days.",
                    "score": 0.83,
                }
            ],
            "context_quality": {"level": "high"},
            "usage": {"prompt_tokens": 412, "completion_tokens": 18, "total_tokens": 430},
            "ttft_ms": 184.2,
            "error_code": None,
            "feedback": {"rating": 1, "comment": None, "created_at": _NOW},
        },
    ],
}
# One line of a JSONL export, shortened.
CONVERSATION_EXPORT_LINE = '{"id": "7d4c…", "session_id": "f3b2…", "messages": [...]}\n'

# --- unanswered questions ---------------------------------------------------------------------

UNANSWERED_QUESTION: dict[str, Any] = {
    "id": "3d8e5fe0e2229155935584c5ca1aac77",  # question_id() of "question"
    "question": "do you ship to switzerland",
    "example": "Do you ship to Switzerland?",
    "count": 4,
    "fallbacks": 3,
    "first_seen": "2026-11-23T14:02:11Z",
    "last_seen": _NOW,
    "quality": "none",
    "example_session_id": CONVERSATION_SUMMARY["session_id"],
    "example_conversation_id": CONVERSATION_SUMMARY["id"],
    "resolved": False,
    "resolved_at": None,
    "asked_since_resolved": 0,
}
UNANSWERED_PAGE: dict[str, Any] = {
    "chatbot_id": "shop",
    "from": "2026-10-26",
    "to": "2026-11-24",
    "questions": [UNANSWERED_QUESTION],
    "total": 1,
    "limit": 50,
    "offset": 0,
}
RESOLVE_BY_ID: dict[str, Any] = {"id": UNANSWERED_QUESTION["id"]}
RESOLVE_BY_QUESTION: dict[str, Any] = {"question": "Do you ship to Switzerland?"}
RESOLUTION: dict[str, Any] = {
    "id": UNANSWERED_QUESTION["id"],
    "resolved": True,
    "resolved_at": "2026-11-24T10:05:00Z",
}

# --- analytics --------------------------------------------------------------------------------

ANALYTICS: dict[str, Any] = {
    "chatbot_id": "shop",
    "from": "2026-11-23",
    "to": "2026-11-24",
    "days": [
        {
            "day": "2026-11-23",
            "conversations": 31,
            "messages": 118,
            "answers": 59,
            "tokens_in": 24_310,
            "tokens_out": 3_904,
            "ttft_median_ms": 212.5,
            "ttft_p95_ms": 640.0,
            "no_context_answers": 4,
            "errors": 1,
            "rejected": {"rate_limited": 12},
        },
        {
            "day": "2026-11-24",
            "conversations": 0,
            "messages": 0,
            "answers": 0,
            "tokens_in": 0,
            "tokens_out": 0,
            "ttft_median_ms": None,
            "ttft_p95_ms": None,
            "no_context_answers": 0,
            "errors": 0,
            "rejected": {"budget_exceeded": 3},
        },
    ],
    "unanswered": {
        "questions": 1,
        "asked": 4,
        "resolved": 0,
        "top": [UNANSWERED_QUESTION],
    },
    "budget": {
        "chatbot": BUDGET,
        "org": {
            "monthly_token_budget": None,
            "used": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "remaining": None,
            "exceeded": False,
            "period": "2026-11",
        },
    },
}
