"""The OpenAPI document: every admin route is in it, authenticated, documented with its
errors, and shows examples for what it takes and what it returns."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from sitechat.api.app import admin_routers, create_app
from sitechat.config import Settings
from sitechat.errors import SharedStateUnavailable
from tests.support.admin import Admin, admin_app, with_settings

METHODS = ("get", "post", "patch", "put", "delete")
# Routes allowed to lack examples are listed here until they have them, so every other gap
# fails this test.
EXAMPLES_PENDING: set[str] = set()  # routes allowed to lack examples: none


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    async with admin_app(settings) as running:
        yield running


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def has_example(spec: dict[str, Any], content: dict[str, Any]) -> bool:
    for media in content.values():
        if "example" in media or "examples" in media:
            return True
        schema = resolve(spec, media.get("schema", {}))
        if "examples" in schema or "example" in schema:
            return True
    return False


def admin_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        if path.startswith("/api/admin/")
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_admin_route_is_in_the_document(settings: Settings) -> None:
    app = create_app(settings)
    spec = app.openapi()
    documented = {(m.upper(), p) for m, p, _ in admin_operations(spec)}
    routed = {
        (method, route.path)
        for router in admin_routers()
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routed == documented
    assert len(documented) >= 20


def test_every_admin_route_has_examples_auth_and_error_shapes(settings: Settings) -> None:
    spec = create_app(settings).openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["AdminKey"]["type"] == "http" and schemes["AdminKey"]["scheme"] == "bearer"
    problems = []
    for method, path, operation in admin_operations(spec):
        name = f"{method.upper()} {path}"
        examples_due = name not in EXAMPLES_PENDING
        if operation.get("security") != [{"AdminKey": []}]:
            problems.append(f"{name}: no bearer security")
        if "401" not in operation["responses"]:
            problems.append(f"{name}: 401 undocumented")
        if "{chatbot_id}" in path and "404" not in operation["responses"]:
            problems.append(f"{name}: 404 undocumented")
        body = operation.get("requestBody")
        if examples_due and body is not None and not has_example(spec, body["content"]):
            problems.append(f"{name}: request body without example")
        success = [r for code, r in operation["responses"].items() if code.startswith("2")]
        if not success:
            problems.append(f"{name}: no success response")
        for response in success:
            if (
                examples_due
                and "content" in response
                and not has_example(spec, response["content"])
            ):
                problems.append(f"{name}: response without example")
        for parameter in operation.get("parameters", []):
            if (
                examples_due
                and parameter["in"] == "path"
                and not (
                    "example" in parameter
                    or "examples" in parameter
                    or "examples" in parameter.get("schema", {})
                )
            ):
                problems.append(f"{name}: path parameter {parameter['name']} without example")
    assert problems == []


# --- issue 9, finding 5: the document disagreed with the server -------------------------------

SAMPLE_PARAMS = {
    "chatbot_id": "shop",
    "session_id": "session-openapi",
    "message_id": "m-1",
    "key_id": "k-1",
    "document_id": "d-1",
    "conversation_id": "c-1",
    "name": "sitechat.js",
}


def concrete(path: str) -> str:
    return path.format(**SAMPLE_PARAMS)


def json_body_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
        and "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs_in(item)]
    return []


def pointer(spec: dict[str, Any], ref: str) -> Any:
    """The node a local ``$ref`` points at (RFC 6901), or None when nothing is there."""
    if not ref.startswith("#/"):
        return None
    node: Any = spec
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


async def test_every_ref_in_the_served_openapi_json_resolves(admin: Admin) -> None:
    """The documents route embedded its body's JSON schema with ``#/$defs/CrawlBody``, which
    points into the OpenAPI document's root, where there is no ``$defs``."""
    response = await admin.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    refs = refs_in(spec)
    assert len(refs) > 20
    assert [ref for ref in refs if pointer(spec, ref) is None] == []
    crawl = spec["paths"]["/api/admin/chatbots/{chatbot_id}/documents"]["post"]["requestBody"]
    schema = crawl["content"]["application/json"]["schema"]
    assert "max_pages" in str(schema["properties"]["crawl"])


async def test_invalid_json_400_is_documented_and_answered_on_every_json_body_route(
    admin: Admin,
) -> None:
    """``400 invalid_json`` was answered by routes taking JSON but listed by few of them."""
    spec = (await admin.client.get("/openapi.json")).json()
    operations = json_body_operations(spec)
    assert len(operations) >= 9
    for method, path in operations:
        responses = spec["paths"][path][method]["responses"]
        assert "400" in responses, f"{method.upper()} {path}: 400 undocumented"
        headers = {**admin.headers, "Content-Type": "application/json"}
        answer = await admin.client.request(
            method, concrete(path), content=b'{"name": ', headers=headers
        )
        assert answer.status_code == 400, f"{method.upper()} {path}: {answer.text}"
        assert answer.json()["code"] == "invalid_json"


async def test_document_routes_document_and_answer_503_when_shared_state_is_away(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documents router listed its own errors only, not the 503 that every admin write
    answers while Redis is configured but unreachable (``SharedStateUnavailable``)."""
    spec = (await admin.client.get("/openapi.json")).json()
    documents = {p: i for p, i in spec["paths"].items() if "/documents" in p}
    assert documents
    for path, item in documents.items():
        for method, operation in item.items():
            assert "503" in operation["responses"], f"{method.upper()} {path}: 503 undocumented"

    async def away() -> None:
        raise SharedStateUnavailable()

    monkeypatch.setattr(admin.harness.services, "require_writable", away)
    added = await admin.post("/api/admin/chatbots/shop/documents", json={"text": "Hello"})
    assert added.status_code == 503 and added.json()["code"] == "unavailable"
    removed = await admin.delete("/api/admin/chatbots/shop/documents/d-1")
    assert removed.status_code == 503
    listed = await admin.get("/api/admin/chatbots/shop/documents")
    assert listed.status_code == 200  # reads still work


async def test_405_allow_lists_every_method_of_the_path(admin: Admin) -> None:
    """Starlette's ``Allow`` named only the methods of the first route matching the path, so
    ``PUT /api/admin/chatbots/shop`` answered ``Allow: GET`` though PATCH and DELETE work."""
    spec = (await admin.client.get("/openapi.json")).json()
    for path in spec["paths"]:
        # Every documented path the concrete one matches: ``DELETE .../conversations/export``
        # is ``DELETE .../conversations/{conversation_id}``, so export's Allow has DELETE.
        documented = {
            method.upper()
            for template, item in spec["paths"].items()
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), concrete(path))
            for method in item
            if method in METHODS
        }
        if "PUT" in documented:
            continue
        answer = await admin.client.put(concrete(path), headers=admin.headers)
        assert answer.status_code == 405, f"PUT {path}: {answer.status_code}"
        assert answer.json()["code"] == "method_not_allowed"
        allowed = set(answer.headers["allow"].split(", "))
        assert allowed == documented, f"{path}: Allow {allowed}, documented {documented}"
    chatbot = await admin.client.put("/api/admin/chatbots/shop")
    assert chatbot.headers["allow"] == "DELETE, GET, PATCH"


async def test_405_on_a_route_outside_the_document_lists_its_methods(admin: Admin) -> None:
    answer = await admin.client.post("/widget/sitechat.js")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


async def test_the_bootstrap_keys_403_is_documented_on_every_org_route(
    settings: Settings,
) -> None:
    """An org route answers 403 to the bootstrap key; only ``POST /orgs`` listed a 403."""
    settings = with_settings(settings, bootstrap_admin_key="b" * 32)
    async with admin_app(settings) as admin:
        refused = await admin.client.get(
            "/api/admin/chatbots", headers={"Authorization": "Bearer " + "b" * 32}
        )
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        spec = (await admin.client.get("/openapi.json")).json()
    missing = [
        f"{method.upper()} {path}"
        for method, path, operation in admin_operations(spec)
        if "403" not in operation["responses"]
    ]
    assert missing == []


def test_starter_questions_1_to_300_characters_are_in_the_schema(settings: Settings) -> None:
    """The 1 to 300 character rule was a validator only, invisible to the schema."""
    schemas = create_app(settings).openapi()["components"]["schemas"]
    for model in ("ChatbotCreate", "ChatbotUpdate"):
        field = schemas[model]["properties"]["starter_questions"]
        array = next(option for option in field["anyOf"] if option.get("type") == "array")
        assert array["maxItems"] == 10
        assert array["items"] == {
            "type": "string",
            "minLength": 1,
            "maxLength": 300,
            "pattern": "\\S",
        }
