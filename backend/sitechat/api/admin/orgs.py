"""The admin API for orgs and their API keys.

POST   /api/admin/orgs             bootstrap key: a new org and its first key (shown once)
GET    /api/admin/org              the caller's org, with its budget and this month's use
PATCH  /api/admin/org              rename it, set or clear its monthly token budget
GET    /api/admin/keys             the org's keys (prefixes, never the keys)
POST   /api/admin/keys             a new key, shown once
DELETE /api/admin/keys/{key_id}    revoke a key (it stops working at once)
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from sitechat.api.admin import examples
from sitechat.api.admin.common import (
    ADMIN_ERRORS,
    BODY_ERRORS,
    Name,
    TokenBudget,
    shown,
    strict,
)
from sitechat.api.auth import AdminOrg, BootstrapAdmin
from sitechat.api.deps import ServicesDep
from sitechat.api.schemas import ErrorBody
from sitechat.domain import ApiKeyRecord, Org
from sitechat.errors import NotFound
from sitechat.gate.budgets import BudgetStatus
from sitechat.services import Services
from sitechat.storage.usage import month_of

# --- bodies -----------------------------------------------------------------------------------


class OrgCreate(BaseModel):
    model_config = strict(examples.ORG_CREATE)

    name: Name
    monthly_token_budget: TokenBudget | None = None


class OrgUpdate(BaseModel):
    model_config = strict(examples.ORG_UPDATE_BUDGET, examples.ORG_UPDATE_NAME)

    name: Name | None = None
    monthly_token_budget: TokenBudget | None = None


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class BudgetOut(BaseModel):
    model_config = shown(examples.BUDGET)

    monthly_token_budget: int | None = Field(description="None: no budget.")
    used: UsageOut
    remaining: int | None
    exceeded: bool
    period: str = Field(description="The calendar month (UTC) the usage counts, YYYY-MM.")


class OrgOut(BaseModel):
    model_config = shown(examples.ORG_OUT)

    id: str
    name: str
    created_at: datetime
    budget: BudgetOut


class ApiKeyCreate(BaseModel):
    model_config = strict(examples.KEY_CREATE)

    name: Name = "default"


class ApiKeyOut(BaseModel):
    model_config = shown(examples.KEY)

    id: str
    name: str
    prefix: str = Field(description="The visible start of the key, to tell keys apart.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyOut:
        return cls(
            id=record.id,
            name=record.name,
            prefix=record.prefix,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            revoked_at=record.revoked_at,
        )


class NewApiKeyOut(ApiKeyOut):
    model_config = shown(examples.NEW_KEY)

    key: str = Field(description="The key itself. Shown this once; only its hash is kept.")


class ApiKeyList(BaseModel):
    model_config = shown(examples.KEY_LIST)

    keys: list[ApiKeyOut]


class OrgCreated(BaseModel):
    model_config = shown(examples.ORG_CREATED)

    org: OrgOut
    api_key: NewApiKeyOut


def org_out(org: Org, budget: BudgetOut) -> OrgOut:
    return OrgOut(id=org.id, name=org.name, created_at=org.created_at, budget=budget)


def budget_out(status: BudgetStatus, period: str) -> BudgetOut:
    return BudgetOut(
        monthly_token_budget=status.budget,
        used=UsageOut(
            prompt_tokens=status.used.prompt_tokens,
            completion_tokens=status.used.completion_tokens,
            total_tokens=status.used.total_tokens,
        ),
        remaining=status.remaining,
        exceeded=status.exceeded,
        period=period,
    )


# --- routes -----------------------------------------------------------------------------------

router = APIRouter(prefix="/api/admin", tags=["admin: orgs and keys"], responses=ADMIN_ERRORS)


async def _org_with_budget(services: Services, org_id: str) -> OrgOut:
    org = await services.store.get_org(org_id)
    if org is None:
        raise NotFound("No org with that id.")
    status = await services.budgets.org_status(org_id)
    return org_out(org, budget_out(status, month_of(datetime.now(UTC))))


@router.post(
    "/orgs",
    status_code=201,
    response_model=OrgCreated,
    summary="Create an org and its first API key (bootstrap key only)",
    responses={**BODY_ERRORS, 403: {"model": ErrorBody, "description": "Not the bootstrap key"}},
)
async def create_org(body: OrgCreate, services: ServicesDep, _: BootstrapAdmin) -> OrgCreated:
    org = await services.store.create_org(body.name)
    if body.monthly_token_budget is not None:
        await services.usage.set_org_budget(org.id, body.monthly_token_budget)
    record, plaintext = await services.store.create_api_key(org.id, "bootstrap")
    return OrgCreated(
        org=await _org_with_budget(services, org.id),
        api_key=NewApiKeyOut(**ApiKeyOut.of(record).model_dump(), key=plaintext),
    )


@router.get("/org", response_model=OrgOut, summary="The caller's org, with its token budget")
async def read_org(org: AdminOrg, services: ServicesDep) -> OrgOut:
    return await _org_with_budget(services, org.id)


@router.patch(
    "/org",
    response_model=OrgOut,
    summary="Rename the org or change its budget",
    responses=BODY_ERRORS,
)
async def update_org(body: OrgUpdate, org: AdminOrg, services: ServicesDep) -> OrgOut:
    if body.name is not None:
        await services.store.rename_org(org.id, body.name)
    if "monthly_token_budget" in body.model_fields_set:
        await services.usage.set_org_budget(org.id, body.monthly_token_budget)
        await services.org_changed(org.id)
    return await _org_with_budget(services, org.id)


@router.get("/keys", response_model=ApiKeyList, summary="The org's API keys (prefixes only)")
async def list_keys(org: AdminOrg, services: ServicesDep) -> ApiKeyList:
    keys = await services.store.list_api_keys(org.id)
    return ApiKeyList(keys=[ApiKeyOut.of(k) for k in keys])


@router.post(
    "/keys",
    status_code=201,
    response_model=NewApiKeyOut,
    summary="Create an API key; the key is in this response only",
    responses=BODY_ERRORS,
)
async def create_key(body: ApiKeyCreate, org: AdminOrg, services: ServicesDep) -> NewApiKeyOut:
    record, plaintext = await services.store.create_api_key(org.id, body.name)
    return NewApiKeyOut(**ApiKeyOut.of(record).model_dump(), key=plaintext)


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key",
    responses={404: {"model": ErrorBody, "description": "No such key in this org"}},
)
async def revoke_key(
    org: AdminOrg,
    services: ServicesDep,
    key_id: str = Path(max_length=64, examples=[examples.KEY["id"]]),
) -> Response:
    if not await services.store.revoke_api_key(org.id, key_id):
        raise NotFound("No API key with that id.")
    return Response(status_code=204)
