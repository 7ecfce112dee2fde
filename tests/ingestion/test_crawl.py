"""Finding a site's pages: by following links within the site and depth, or from its
sitemap; robots.txt and the page limit are respected."""

from __future__ import annotations

from sitechat.ingestion.crawl import Crawler, CrawlOptions, CrawlResult
from sitechat.ingestion.fetch import Fetcher, FetchPolicy

from .site import Site


async def crawl(policy: FetchPolicy, url: str, options: CrawlOptions) -> list[CrawlResult]:
    fetcher = Fetcher(policy)
    try:
        return [result async for result in Crawler(fetcher, options).pages(url)]
    finally:
        await fetcher.aclose()


def build_site(site: Site) -> None:
    other = site.url("/elsewhere", host="localhost")  # another host name: another site
    site.html(
        "/", "Home", "Welcome.", links=("/a", "/b#section", "/logo.png", other, "mailto:x@y.z")
    )
    site.html("/a", "A", "Page a.", links=("/", "/a/deep"))
    site.html("/b", "B", "Page b.", links=("/a",))
    site.html("/a/deep", "Deep", "Two clicks away.", links=("/a/deep/deeper",))
    site.html("/a/deep/deeper", "Deeper", "Three clicks away.")


async def test_links_are_followed_within_the_site_and_depth(
    site: Site, policy: FetchPolicy
) -> None:
    build_site(site)
    results = await crawl(policy, site.url("/"), CrawlOptions(max_depth=2))
    assert [r.url for r in results] == [
        site.url("/"),
        site.url("/a"),
        site.url("/b"),
        site.url("/a/deep"),
    ]
    assert all(r.page is not None for r in results)
    assert "/a/deep/deeper" not in site.paths() and "/logo.png" not in site.paths()


async def test_the_page_limit_stops_the_crawl(site: Site, policy: FetchPolicy) -> None:
    build_site(site)
    results = await crawl(policy, site.url("/"), CrawlOptions(max_pages=2, max_depth=5))
    assert len(results) == 2


async def test_pages_robots_txt_forbids_are_reported_not_fetched(
    site: Site, policy: FetchPolicy
) -> None:
    build_site(site)
    site.add("/robots.txt", "User-agent: *\nDisallow: /b\n", content_type="text/plain")
    results = {r.url: r for r in await crawl(policy, site.url("/"), CrawlOptions())}
    blocked = results[site.url("/b")]
    assert blocked.page is None and blocked.error is not None and "robots.txt" in blocked.error
    assert "/b" not in site.paths()
    assert results[site.url("/a")].page is not None


async def test_pages_come_from_the_sitemap_and_its_index(site: Site, policy: FetchPolicy) -> None:
    build_site(site)
    site.add(
        "/sitemap.xml",
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{site.url('/sitemap-pages.xml')}</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    site.add(
        "/sitemap-pages.xml",
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url('/b')}</loc></url>"
        f"<url><loc>{site.url('/a/deep/deeper')}</loc></url>"
        "<url><loc>https://elsewhere.example/page</loc></url></urlset>",
        content_type="application/xml",
    )
    results = await crawl(policy, site.url("/"), CrawlOptions(use_sitemap=True))
    assert [r.url for r in results] == [site.url("/b"), site.url("/a/deep/deeper")]
    assert "/a" not in site.paths(), "a sitemap crawl does not follow links"
