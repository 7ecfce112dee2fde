"""The public gate: may this public request run, and how much of it?

Every public request passes ``PublicGate`` (``admission``) before anything is stored or
generated. One module a concern, in the order a request meets them:

- ``policy``: the chatbot's access policy, merged from its settings and the deployment's;
- ``origins`` and ``origin_index``: normalising ``Origin`` and the deployment-wide CORS view;
- ``visitor_tokens``: the signed, short-lived tokens the config endpoint hands out;
- ``client_ip``: the visitor's address, believing ``X-Forwarded-For`` only from proxies;
- ``rate_limits``: moving windows per IP, visitor, session and chatbot (429);
- ``budgets``: monthly token budgets of a chatbot and its org (429, ``budget_exceeded``);
- ``stream_slots``: caps on answers streaming at once (429, ``too_many_streams``);
- ``rejections``: refusals counted per day and reason for the owner's analytics.

What each refusal answers (status, code, ``Retry-After``) is decided in ``sitechat.errors``.
"""

from __future__ import annotations

from sitechat.gate.admission import Admission, GateRequest, PublicGate

__all__ = ["Admission", "GateRequest", "PublicGate"]
