"""The link guard: an answer may only link to its sources or to the chatbot's own sites.

Models invent links (``[Caches](https://docs.postgresql.org/3.7#caching)``), and a visitor
clicks what a website's assistant shows them. So every link in an answer is checked, as it
streams, against a ``LinkPolicy``; a link that fails loses its target and keeps its text.

A link passes when its target is

- a source's URL (a passage's ``url``), or a URL written in a passage's text (quoting the
  documents is not inventing; this is what keeps the extractive answer's links), compared
  without scheme, fragment or trailing slash; or
- an http(s) URL on one of the chatbot's allowed domains: the hosts of its
  ``allowed_origins``, *subdomains included* (``docs.shop.example`` for
  ``https://shop.example``; ``www.`` is dropped first, so ``https://www.shop.example``
  allows ``shop.example`` and its subdomains too). A chatbot open to any origin has no
  allowed domains: only its sources' URLs pass.

What is checked, the way the widget's Markdown (``widget/src/markdown.js``) makes links:

- inline links ``[text](target "title")`` (images too: ``![alt](x)`` is a link after a
  ``!``): a failing one becomes its text, ``text``;
- autolinks ``<https://...>`` and bare ``https://...`` URLs: a failing one is removed,
  replaced by nothing (its text *is* the invented URL);
- reference-style links: their definition ``[ref]: https://...`` holds a bare or angle URL,
  removed like any other, and ``[text][ref]`` without a target stays plain text.

Code spans are not special: an invented URL in code is still invented. Only absolute
http(s) targets can pass; relative, ``mailto:`` and ``javascript:`` ones never render as
links in the widget and are treated as failing (their text is kept).

Streaming: ``feed`` returns at once everything that cannot be part of a link; from a ``[``,
a ``<`` or a possible URL start (``h``, ``ht`` ... ``https://`` after a non-word character)
it holds the text back until the link is complete and judged. The hold is bounded: a
``[`` whose ``]`` has not come within ``MAX_LINK_TEXT`` characters is released as plain
text (any URL inside it is still checked), and a URL longer than ``MAX_URL`` is removed to
its end. ``flush`` judges what is held as the final text (a link that never closed is
plain text, its URL still checked). What ``feed`` and ``flush`` return, concatenated, is
the answer the visitor sees and the one stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from sitechat.llm.base import ContextPassage

MAX_LINK_TEXT = 200
MAX_URL = 2048

_SCHEMES = ("https://", "http://")
# Where a bare URL ends, as the widget sees it; then trailing punctuation is not part of it.
_URL_STOP = frozenset("<>\"'`[]")
_TRAILING = ".,;:!?*_~"
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'`\[\]]+", re.IGNORECASE)
_ESCAPE = re.compile(r"\\(.)")
_WORD = re.compile(r"\w")


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Which link targets an answer may show."""

    urls: frozenset[str] = frozenset()  # normalised, see ``_normalise``
    hosts: tuple[str, ...] = ()  # allowed hosts, their subdomains included

    @classmethod
    def of(cls, allowed_origins: Iterable[str], passages: Iterable[ContextPassage]) -> LinkPolicy:
        urls: set[str] = set()
        for passage in passages:
            urls |= _passage_urls(passage.url, passage.text)
        hosts = []
        for origin in allowed_origins:
            host = _host(origin)
            if host:
                hosts.append(host.removeprefix("www."))
        return cls(frozenset(urls), tuple(dict.fromkeys(hosts)))

    def allows(self, url: str) -> bool:
        normal = _normalise(url)
        if normal is None:
            return False
        if normal in self.urls:
            return True
        host = _host(url)
        return host is not None and any(
            host == allowed or host.endswith(f".{allowed}") for allowed in self.hosts
        )


@lru_cache(maxsize=4096)  # the same passages come back for many questions
def _passage_urls(url: str | None, text: str) -> frozenset[str]:
    """A passage's own URL and those written in its text, normalised."""
    found = [url] if url else []
    found += [_trim(m.group()) for m in _URL_IN_TEXT.finditer(text)]
    return frozenset(u for u in map(_normalise, found) if u is not None)


class LinkGuard:
    """Filters one answer's text as it streams; see the module docstring."""

    def __init__(self, policy: LinkPolicy) -> None:
        self.policy = policy
        self._held = ""
        self._last = ""  # the last character released: is a URL here at a word start?
        self._dropping = False  # inside a URL too long to hold, removed to its end

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, text: str) -> str:
        """Add streamed text; what may be shown now."""
        released, self._held = self._scan(self._held + text, final=False)
        return released

    def flush(self) -> str:
        """The answer ended (or stopped, or failed): what was held, judged as final."""
        released, self._held = self._scan(self._held, final=True)
        return released

    def clean(self, text: str) -> str:
        """A whole text at once (a fresh guard, same policy)."""
        return LinkGuard(self.policy)._scan(text, final=True)[0]

    def _scan(self, text: str, *, final: bool) -> tuple[str, str]:
        out: list[str] = []
        n = len(text)
        i = 0
        if self._dropping:
            i = _url_end(text, 0)
            if i == n and not final:
                return "", ""
            self._dropping = False
        last = self._last
        plain = i  # start of the run of plain text not yet in ``out``
        while i < n:
            c = text[i]
            if c == "[":
                step = self._inline_link(text, i, final)
            elif c == "<":
                step = self._autolink(text, i, final)
            elif c in "hH" and not _is_word(text[i - 1] if i > plain else last):
                step = self._bare_url(text, i, final)
            else:
                i += 1
                continue
            if step is None:  # hold from here
                break
            replacement, used = step
            if replacement == c and used == 1:  # not a link after all
                i += 1
                continue
            if i > plain:
                out.append(text[plain:i])
                last = text[i - 1]
            if replacement:
                out.append(replacement)
                last = replacement[-1]
            i += used
            plain = i
        if i > plain:
            out.append(text[plain:i])
            last = text[i - 1]
        self._last = last
        return "".join(out), text[i:]

    # Each step: None to hold from ``i``, else (what to release, how many chars it used).

    def _inline_link(self, text: str, i: int, final: bool) -> tuple[str, int] | None:
        close = _closing_bracket(text, i)
        if close == _TOO_LONG:
            return "[", 1
        if close == _INCOMPLETE or close + 1 == len(text):
            return ("[", 1) if final else None
        if text[close + 1] != "(":
            return "[", 1
        parsed = _destination(text, close + 2)
        if parsed == _INCOMPLETE:
            if final or len(text) - i > MAX_LINK_TEXT + MAX_URL:
                return "[", 1
            return None
        if parsed == _FAIL:
            return "[", 1
        assert isinstance(parsed, tuple)
        target, end = parsed
        label = self.clean(text[i + 1 : close])
        if self.policy.allows(_ESCAPE.sub(r"\1", target)):
            # A label that was only a removed URL shows the (allowed) target instead.
            return f"[{label or target}{text[close:end]}", end - i
        return label, end - i

    def _autolink(self, text: str, i: int, final: bool) -> tuple[str, int] | None:
        scheme = _scheme_at(text, i + 1)
        if scheme == 0:
            return "<", 1
        if scheme < 0:
            return ("<", 1) if final else None
        end = i + 1 + scheme
        while end < len(text) and not text[end].isspace() and text[end] not in "<>":
            end += 1
        if end == len(text):
            return ("<", 1) if final or end - i > MAX_URL else None
        if text[end] != ">" or end == i + 1 + scheme:
            return "<", 1
        url = text[i + 1 : end]
        return (f"<{url}>" if self.policy.allows(url) else ""), end + 1 - i

    def _bare_url(self, text: str, i: int, final: bool) -> tuple[str, int] | None:
        scheme = _scheme_at(text, i)
        if scheme == 0:
            return text[i], 1
        if scheme < 0:
            return (text[i], 1) if final else None
        end = _url_end(text, i + scheme)
        if end == len(text) and not final:
            if end - i <= MAX_URL:
                return None
            self._dropping = True  # no answer links that long: remove it to its end
            return "", end - i
        url = _trim(text[i:end])
        if len(url) == scheme:  # a scheme and nothing else
            return text[i], 1
        return (url if self.policy.allows(url) else ""), len(url)


_INCOMPLETE = -1
_TOO_LONG = -2
_FAIL = -3


def _closing_bracket(text: str, i: int) -> int:
    """The ``]`` closing the ``[`` at ``i`` (nested brackets balanced, escapes skipped)."""
    depth = 0
    k = i
    while k < len(text):
        if k - i > MAX_LINK_TEXT:
            return _TOO_LONG
        ch = text[k]
        if ch == "\\":
            k += 2
            continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return _INCOMPLETE


def _destination(text: str, k: int) -> tuple[str, int] | int:
    """``target [title])`` from ``k`` (just after the ``(``): (target, index after ``)``)."""
    n = len(text)
    k = _skip_space(text, k)
    if k == n:
        return _INCOMPLETE
    if text[k] == "<":
        start = k + 1
        k = start
        while k < n and text[k] not in "<>\n":
            k += 1
        if k == n:
            return _INCOMPLETE
        if text[k] != ">":
            return _FAIL
        target = text[start:k]
        k += 1
    else:
        start = k
        depth = 0
        while k < n:
            ch = text[k]
            if ch == "\\":
                k += 2
                continue
            if ch.isspace() or ch in "<>":
                break
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            k += 1
        if k >= n:
            return _INCOMPLETE
        target = text[start:k]
    k = _skip_space(text, k)
    if k == n:
        return _INCOMPLETE
    if text[k] in "\"'":
        close = text.find(text[k], k + 1)
        if close < 0:
            return _INCOMPLETE
        k = _skip_space(text, close + 1)
        if k == n:
            return _INCOMPLETE
    return (target, k + 1) if text[k] == ")" else _FAIL


def _skip_space(text: str, k: int) -> int:
    while k < len(text) and text[k].isspace():
        k += 1
    return k


def _scheme_at(text: str, k: int) -> int:
    """The length of ``http://`` or ``https://`` at ``k``; -1 if the text ends in a prefix
    of one (it may still become one), 0 if none is there."""
    start = text[k : k + 8].lower()
    for scheme in _SCHEMES:
        if start.startswith(scheme):
            return len(scheme)
    if k + len(start) == len(text) and any(s.startswith(start) for s in _SCHEMES):
        return -1
    return 0


def _url_end(text: str, k: int) -> int:
    while k < len(text) and not text[k].isspace() and text[k] not in _URL_STOP:
        k += 1
    return k


def _trim(url: str) -> str:
    """A bare URL without the punctuation after it (as the widget trims it)."""
    url = url.rstrip(_TRAILING)
    while url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1]
    return url


def _is_word(ch: str) -> bool:
    return bool(ch) and _WORD.match(ch) is not None


def _host(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https") or parts.username or parts.password:
            return None
        return parts.hostname or None
    except ValueError:
        return None


def _normalise(url: str) -> str | None:
    """The part of a URL two links to the same page share: host, port, path, query."""
    try:
        parts = urlsplit(url.strip())
        host = _host(url)
        port = parts.port
    except ValueError:
        return None
    if host is None:
        return None
    netloc = f"{host}:{port}" if port else host
    query = f"?{parts.query}" if parts.query else ""
    return f"{netloc}{parts.path.rstrip('/')}{query}"
