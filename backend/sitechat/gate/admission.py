"""The public endpoint's gate: who may use a chatbot, how much, and how many at once.

Every public request passes here before anything is stored or generated. In order, cheap
and certain first, so that a refused request costs as little as possible:

1. the chatbot exists (its config, from the cache);
2. the ``Origin`` is allowed (403). No ``Origin`` means not a browser: allowed, since a
   script can forge any ``Origin`` anyway; same-origin pages (sitechat's own demo page) are
   allowed too. The visitor token and the per-IP limits are what hold scripts back;
3. the visitor token, when the chatbot requires one (401: the widget fetches a new one);
4. rate limits (429 with ``Retry-After`` and ``X-RateLimit-*``): per IP, per visitor and per
   session first, then the chatbot-wide limit (see ``rate_limits``);
5. the monthly token budgets of the chatbot and its org (429, ``budget_exceeded``);
6. a stream slot under the per-chatbot and per-IP caps (429, ``too_many_streams``).

With Redis, steps 4 and 6 are one script call (``redis_windows``): the limits stage by
stage, then the slot if none refused; the budgets (step 5) are read from a short cache in
between, and a slot taken by a request over its budget is given back at once.

Refusals for a known chatbot are counted per day and reason for the owner's analytics.
No HTTP here: the routes turn a ``GateRequest`` into an ``Admission`` or an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from sitechat.config import Settings
from sitechat.domain import ChatbotConfig
from sitechat.errors import (
    BudgetExceeded,
    ChatbotNotFound,
    LimitExceeded,
    OriginNotAllowed,
    TooManyStreams,
    Unauthorized,
    VisitorTokenInvalid,
)
from sitechat.gate.budgets import BudgetGuard
from sitechat.gate.origins import InvalidOrigin, normalize_origin
from sitechat.gate.policy import ChatbotPolicy, parse_limits, policy_of
from sitechat.gate.rate_limits import LimitCheck, LimitVerdict, RateLimiter
from sitechat.gate.rejections import RejectionCounter
from sitechat.gate.stream_slots import StreamSlot, StreamSlots
from sitechat.gate.visitor_tokens import VisitorClaims, VisitorTokens
from sitechat.shared_state.config_cache import ConfigCache


@dataclass(frozen=True, slots=True)
class GateRequest:
    chatbot_id: str
    client_ip: str
    origin: str | None = None  # the raw Origin header
    host: str | None = None  # the raw Host header, for recognising same-origin pages
    session_id: str | None = None
    visitor_token: str | None = None


@dataclass(slots=True)
class Admission:
    config: ChatbotConfig
    policy: ChatbotPolicy
    origin: str  # normalised; "" without an Origin header
    visitor: VisitorClaims | None = None
    slot: StreamSlot | None = None

    @property
    def visitor_id(self) -> str | None:
        """The visitor the token names, when the chatbot requires one: sessions are theirs."""
        return self.visitor.visitor_id if self.visitor is not None else None

    async def release(self) -> None:
        if self.slot is not None:
            await self.slot.release()


def _same_origin(origin: str, host: str | None) -> bool:
    """True when ``origin`` (normalised) is this server's own, as named by ``Host``.

    The scheme is not compared: behind a TLS-terminating proxy the app sees http while the
    page is https. Outside a browser both headers are the caller's to choose anyway, so the
    ``Host`` goes through the same checks as an ``Origin``: anything that is not a plain
    host (zone ids, non-ASCII, user info, paths) is not this server.
    """
    if not host:
        return False
    scheme = origin.split(":", 1)[0]
    try:
        return normalize_origin(f"{scheme}://{host.strip()}") == origin
    except InvalidOrigin:
        return False


class PublicGate:
    def __init__(
        self,
        *,
        settings: Settings,
        configs: ConfigCache,
        limiter: RateLimiter,
        slots: StreamSlots,
        budgets: BudgetGuard,
        tokens: VisitorTokens,
        rejections: RejectionCounter,
    ) -> None:
        self.settings = settings
        self.configs = configs
        self.limiter = limiter
        self.slots = slots
        self.budgets = budgets
        self.tokens = tokens
        self.rejections = rejections

    # --- the entry points ----------------------------------------------------------------

    async def admit_chat(self, request: GateRequest) -> Admission:
        """Everything a chat request needs; the caller must ``release()`` the admission."""
        admission = await self._admit(request, token_required=True)
        stages = self._chat_stages(admission, request)
        try:
            # The limits, then the stream slot if none refused: one round trip on Redis, and
            # no await that yields to other requests without it. The budgets come after: a
            # request over a limit is refused as that (and a slot taken by a request over
            # its budget is given back at once).
            verdict, admission.slot = await self.limiter.check_and_take(
                stages,
                self.slots,
                self.slots.request(
                    admission.config.id,
                    request.client_ip,
                    per_chatbot=admission.policy.max_streams_per_chatbot,
                    per_ip=admission.policy.max_streams_per_ip,
                ),
            )
            self._refuse_if_limited(admission, verdict)
            try:
                await self.budgets.check(admission.config, admission.policy)
            except BudgetExceeded:
                self.rejections.add(admission.config.id, "budget_exceeded")
                raise
            if admission.slot is None:
                self.rejections.add(admission.config.id, "too_many_streams")
                raise TooManyStreams()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await admission.release()
            raise
        return admission

    async def admit_config(self, request: GateRequest) -> tuple[Admission, str | None, int | None]:
        """The config request: origin and per-IP checks; then a visitor token (and its
        expiry, unix seconds) when the chatbot requires one."""
        admission = await self._admit(request, token_required=False)
        await self._limit(admission, request, [[self._config_check(admission, request)]])
        if not admission.policy.require_visitor_token:
            return admission, None, None
        token, claims = self.tokens.issue(
            admission.config.id,
            admission.origin,
            visitor_id=self._returning_visitor(request, admission.origin),
        )
        admission.visitor = claims
        return admission, token, claims.expires_at

    async def admit_visitor_read(self, request: GateRequest) -> Admission:
        """Reading a session back or rating an answer: origin, token and per-IP checks."""
        admission = await self._admit(request, token_required=True)
        await self._limit(admission, request, [[self._config_check(admission, request)]])
        return admission

    async def allows_origin(self, chatbot_id: str, origin: str) -> bool:
        """Whether ``chatbot_id`` lets pages on ``origin`` (normalised) use it: step 2 as
        CORS sees it, deciding what a browser may read. Unknown chatbots allow nothing."""
        config = await self.configs.get(chatbot_id)
        return config is not None and policy_of(config, self.settings).allows_origin(origin)

    # --- the steps -----------------------------------------------------------------------

    async def _admit(self, request: GateRequest, *, token_required: bool) -> Admission:
        config = await self.configs.get(request.chatbot_id)
        if config is None:
            raise ChatbotNotFound()
        policy = policy_of(config, self.settings)
        origin = ""
        if request.origin is not None:
            try:
                origin = normalize_origin(request.origin)
            except InvalidOrigin:
                self.rejections.add(config.id, "origin")
                raise OriginNotAllowed() from None
            if not policy.allows_origin(origin) and not _same_origin(origin, request.host):
                self.rejections.add(config.id, "origin")
                raise OriginNotAllowed()
        admission = Admission(config, policy, origin)
        if token_required and policy.require_visitor_token:
            try:
                admission.visitor = self.tokens.verify(request.visitor_token, config.id, origin)
            except Unauthorized:
                self.rejections.add(config.id, "visitor_token")
                raise
        return admission

    def _returning_visitor(self, request: GateRequest, origin: str) -> str | None:
        """A visitor who refreshes an (even expired) token of theirs keeps their visitor id,
        so per-visitor limits follow them; anything else gets a new id. ``origin`` is the
        admitted (normalised) one."""
        if not request.visitor_token:
            return None
        try:
            claims = self.tokens.read(request.visitor_token)
        except VisitorTokenInvalid:
            return None
        if claims.chatbot_id != request.chatbot_id or claims.origin != origin:
            return None
        return claims.visitor_id

    def _config_check(self, admission: Admission, request: GateRequest) -> LimitCheck:
        return LimitCheck(
            "config_per_ip",
            (admission.config.id, request.client_ip),
            parse_limits(self.settings.rate_limit_config_per_ip),
        )

    @staticmethod
    def _chat_stages(admission: Admission, request: GateRequest) -> list[list[LimitCheck]]:
        """The narrow limits (IP, visitor, session), then the chatbot-wide one."""
        bot, limits = admission.config.id, admission.policy.limits
        narrow = [LimitCheck("per_ip", (bot, request.client_ip), limits["per_ip"])]
        if admission.visitor is not None:
            narrow.append(
                LimitCheck(
                    "per_visitor", (bot, admission.visitor.visitor_id), limits["per_visitor"]
                )
            )
        if request.session_id:
            narrow.append(
                LimitCheck("per_session", (bot, request.session_id), limits["per_session"])
            )
        return [narrow, [LimitCheck("per_chatbot", (bot,), limits["per_chatbot"])]]

    async def _limit(
        self, admission: Admission, request: GateRequest, stages: list[list[LimitCheck]]
    ) -> None:
        self._refuse_if_limited(admission, await self.limiter.check(stages))

    def _refuse_if_limited(self, admission: Admission, verdict: LimitVerdict) -> None:
        if not verdict.allowed:
            self.rejections.add(admission.config.id, "rate_limited")
            raise LimitExceeded(retry_after=verdict.retry_after, limit_headers=verdict.headers())
