"""Web origins: what the owner may list as allowed, and how a request's ``Origin`` compares.

An origin is ``scheme://host[:port]`` (RFC 6454) with scheme ``http`` or ``https`` and
nothing else: no path, query, fragment or user info. Both sides are normalised (lower-case,
default port dropped, IDN hosts in their ASCII form) before comparing, so
``https://Shop.example:443`` and ``https://shop.example`` are the same origin.

Whatever a client sends, the answer is a normalised origin or ``InvalidOrigin``, never
another exception, and a normalised origin is always ASCII: it is signed into visitor
tokens and compared in constant time, which only works on ASCII text. IPv6 zone ids
(``[fe80::1%eth0]``) are refused: they name a network interface of the visitor's own
machine, never a website.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidOrigin(ValueError):
    pass


def _check_host(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        if "%" in host:
            raise InvalidOrigin(f"an IPv6 zone id is not part of a website's origin: {host!r}")
        ipaddress.IPv6Address(host[1:-1])  # ValueError if not an address
        return host
    try:
        ipaddress.IPv4Address(host)
        return host
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
        ascii_host.encode("ascii").decode("idna")  # an "xn--" label must be real punycode
    except UnicodeError as exc:
        raise InvalidOrigin(f"not a valid host: {host!r}") from exc
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise InvalidOrigin(f"not a valid host: {host!r}")
    return ascii_host


def normalize_origin(text: str) -> str:
    """The canonical form of ``text``; ``InvalidOrigin`` unless it is exactly an origin."""
    raw = text.strip()
    if not raw or any(c.isspace() for c in raw):
        raise InvalidOrigin("an origin is scheme://host[:port], e.g. https://shop.example")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidOrigin(f"{raw!r} has an invalid port") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidOrigin(f"{raw!r}: the scheme must be http or https")
    if parts.username is not None or parts.password is not None:
        raise InvalidOrigin(f"{raw!r}: an origin has no user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or raw.endswith("?"):
        raise InvalidOrigin(f"{raw!r}: an origin has no path, query or fragment")
    if parts.path == "/":
        raise InvalidOrigin(f"{raw!r}: an origin has no trailing slash")
    netloc_host = parts.netloc.rsplit("@", 1)[-1]
    host = (
        netloc_host[: netloc_host.index("]") + 1]
        if netloc_host.startswith("[")
        else (netloc_host.split(":", 1)[0])
    )
    if not host or netloc_host[len(host) :][:1] not in ("", ":"):
        raise InvalidOrigin(f"{raw!r} has no host, or text after it")
    try:
        host = _check_host(host.lower())
    except ValueError as exc:
        raise InvalidOrigin(f"{raw!r} has an invalid host") from exc
    origin = (
        f"{scheme}://{host}"
        if port is None or port == _DEFAULT_PORTS[scheme]
        else f"{scheme}://{host}:{port}"
    )
    if not origin.isascii():  # each part was checked above; this holds whatever slipped by
        raise InvalidOrigin(f"{raw!r} is not ASCII after IDNA")
    return origin


def request_origin(header: str | None) -> str | None:
    """A request's ``Origin`` normalised; None when absent. ``"null"`` (sandboxed frames,
    file pages) and anything malformed stay as given and match no allowed origin."""
    if header is None:
        return None
    try:
        return normalize_origin(header)
    except InvalidOrigin:
        return header.strip()
