"""HTML to the readable text of the page, as Markdown, so chunking can follow its headings.

A web page is mostly not its content: menus, headers, footers, cookie banners, scripts. The
extraction is a small set of rules, in order:

1. Links are collected from the whole page first (menus are how a crawler finds pages).
2. Elements that are never content go: scripts, styles, forms, frames, ``nav``, ``aside``,
   ARIA landmarks for navigation/banner/footer/search, hidden elements, and elements whose
   class or id says menu, sidebar, breadcrumb, cookie, share, advert... (``_JUNK_NAME``).
   ``header`` and ``footer`` go unless they sit inside the main content (an article's own
   header carries its title).
3. The content root is ``main`` (or ``[role=main]``), else the only ``article``, else the
   body.
4. The root becomes Markdown: headings ``#``..``######``, paragraphs, lists ``-``, code
   fences, tables as pipe tables. Inline markup is flattened to its text.

The page title is the content's first ``h1``, else ``<title>``, else ``og:title``.
Parsing uses selectolax (lexbor): fast, and tolerant of the HTML that real sites serve.
CPU-bound on large pages: call from a worker thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

_NEVER_CONTENT = (
    "script, style, noscript, template, svg, canvas, iframe, object, embed, form, button, "
    "input, select, textarea, nav, aside, dialog, "
    "[role=navigation], [role=banner], [role=contentinfo], [role=search], "
    "[role=complementary], [role=dialog], [aria-hidden=true], [hidden]"
)
_JUNK_NAME = re.compile(
    r"(?:^|[\s_-])(nav|navbar|navigation|menu|menubar|sidebar|breadcrumbs?|cookies?|"
    r"consent|banner|share|sharing|social|advert|ads|advertisement|promo|newsletter|"
    r"skip-link|skiplink|toc|pagination|related|comments?)(?:$|[\s_-])",
    re.IGNORECASE,
)
_KEEP_TAGS = frozenset({"html", "body", "main", "article"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "blockquote", "figure", "figcaption",
        "dl", "dt", "dd", "address", "details", "summary", "header", "footer", "center",
        "li", "tr", "hr", "body", "html",
    }
)  # fmt: skip
_MARKDOWN_LEAD = re.compile(r"^(\s*)(#|[-*+]\s|\d{1,9}[.)]\s|>|```|~~~|\|)")
_SPACE = re.compile(r"[ \t\r\n\f\v]+")


@dataclass(frozen=True, slots=True)
class HtmlPage:
    title: str
    markdown: str  # the readable content; "" when the page has none
    links: tuple[str, ...]  # absolute http(s) URLs without fragments, in page order


def parse_html(html: str, *, base_url: str | None = None) -> HtmlPage:
    tree = LexborHTMLParser(html)
    base = _base_url(tree, base_url)
    links = _links(tree, base) if base is not None else ()
    for node in tree.css(_NEVER_CONTENT):
        node.decompose()
    _drop_named_junk(tree)
    root = _content_root(tree)
    if root is None:
        return HtmlPage(_title(tree, None), "", links)
    _drop_page_chrome(root)
    renderer = _Renderer()
    renderer.walk(root)
    renderer.flush()
    return HtmlPage(_title(tree, root), "\n\n".join(renderer.blocks).strip(), links)


def _base_url(tree: LexborHTMLParser, base_url: str | None) -> str | None:
    if base_url is None:
        return None
    base = tree.css_first("base[href]")
    href = base.attributes.get("href") if base is not None else None
    return urljoin(base_url, href) if href else base_url


def _links(tree: LexborHTMLParser, base: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for anchor in tree.css("a[href]"):
        href = (anchor.attributes.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
            continue
        if (anchor.attributes.get("rel") or "").lower().find("nofollow") >= 0:
            continue
        url, _fragment = urldefrag(urljoin(base, href))
        if url.startswith(("http://", "https://")):
            found.setdefault(url, None)
    return tuple(found)


def _drop_named_junk(tree: LexborHTMLParser) -> None:
    for node in tree.css("[class], [id]"):
        if node.tag in _KEEP_TAGS:
            continue
        names = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        if _JUNK_NAME.search(names):
            node.decompose()


def _content_root(tree: LexborHTMLParser) -> LexborNode | None:
    for selector in ("main", "[role=main]"):
        node = tree.css_first(selector)
        if node is not None and _text_length(node) > 0:
            return node
    articles = tree.css("article")
    if len(articles) == 1 and _text_length(articles[0]) > 0:
        return articles[0]
    return tree.body


def _drop_page_chrome(root: LexborNode) -> None:
    """Site headers and footers go; an article's own header (its title) stays."""
    for node in root.css("header, footer"):
        parent = node.parent
        inside_content = False
        while parent is not None and parent.tag not in ("body", "html"):
            if parent.tag in ("article", "main", "section"):
                inside_content = True
                break
            parent = parent.parent
        if not inside_content and node.tag in ("header", "footer"):
            node.decompose()


def _text_length(node: LexborNode) -> int:
    return len(_SPACE.sub("", node.text(deep=True)))


def _title(tree: LexborHTMLParser, root: LexborNode | None) -> str:
    if root is not None:
        h1 = root.css_first("h1")
        if h1 is not None and _collapse(h1.text(deep=True)):
            return _collapse(h1.text(deep=True))
    title = tree.css_first("title")
    if title is not None and _collapse(title.text(deep=True)):
        return _collapse(title.text(deep=True))
    meta = tree.css_first('meta[property="og:title"]')
    if meta is not None:
        return _collapse(meta.attributes.get("content") or "")
    return ""


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _escape(paragraph: str) -> str:
    """Plain text that would read as Markdown syntax at the start of a line is escaped."""
    return _MARKDOWN_LEAD.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", paragraph)


class _Renderer:
    """Walks a content tree and collects Markdown blocks."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self._inline: list[str] = []

    def flush(self) -> None:
        text = _collapse("".join(self._inline))
        self._inline = []
        if text:
            self.blocks.append(_escape(text))

    def walk(self, node: LexborNode) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self._inline.append(child.text(deep=False))
            elif tag in _HEADINGS:
                self.flush()
                text = _collapse(child.text(deep=True))
                if text:
                    self.blocks.append(f"{'#' * _HEADINGS[tag]} {text}")
            elif tag == "pre":
                self.flush()
                code = child.text(deep=True).strip("\n")
                if code.strip():
                    self.blocks.append(f"```\n{code}\n```")
            elif tag in ("ul", "ol"):
                self.flush()
                self._list(child, ordered=tag == "ol")
            elif tag == "table":
                self.flush()
                self._table(child)
            elif tag == "br":
                self._inline.append(" ")
            elif tag in _BLOCKS:
                self.flush()
                self.walk(child)
                self.flush()
            elif tag is not None and not tag.startswith("#") and tag != "-comment":
                self.walk(child)  # inline element: its text joins the paragraph

    def _list(self, node: LexborNode, *, ordered: bool) -> None:
        items: list[str] = []
        number = 1
        for item in node.iter():
            if item.tag != "li":
                continue
            inner = _Renderer()
            inner.walk(item)
            inner.flush()
            if not inner.blocks:
                continue
            marker = f"{number}." if ordered else "-"
            number += 1
            first, *rest = inner.blocks
            # ``_escape`` protected the item's own text; the marker is real Markdown.
            lines = [f"{marker} {first}"]
            lines += ["    " + line for block in rest for line in block.split("\n")]
            items.append("\n".join(lines))
        if items:
            self.blocks.append("\n".join(items))

    def _table(self, node: LexborNode) -> None:
        rows: list[list[str]] = []
        for row in node.css("tr"):
            cells = [
                _collapse(cell.text(deep=True)).replace("|", "\\|")
                for cell in row.iter()
                if cell.tag in ("td", "th")
            ]
            if any(cells):
                rows.append(cells)
        if not rows:
            return
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        self.blocks.append("\n".join(lines))
