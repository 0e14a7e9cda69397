"""Scrapy crawling hyperscale's test web, for bench/crawler-vs-scrapy.sh.

Settings chosen to match `hyperscale crawler crawl --delay-ms 0
--concurrency N --scope same-domain --no-bodies`: N concurrent requests, no
download delay, robots.txt obeyed, no HTTP cache, no autothrottle, links
followed from a/area/link/iframe on 127.0.0.1 only, nofollow respected,
redirects followed. Scrapy keys its per-domain slots by host name without the
port, so all test-web hosts share one slot: the per-domain limit is set to N
too, which lets Scrapy send several requests to one port at once (our
crawler never does). Prints one JSON line: pages, body bytes, seconds, p99
download latency (Scrapy's `download_latency`: request sent to response
headers), peak RSS. `hyperscale bench crawler` runs this file (it is
compiled into the binary).
"""
import json
import resource
import sys
import time
from urllib.parse import urlparse

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor

seeds = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 32
pages = 0
body_bytes = 0
latencies = []


class TestWebSpider(scrapy.Spider):
    name = "testweb"
    start_urls = seeds
    links = LinkExtractor(tags=("a", "area", "link", "iframe"), attrs=("href", "src"), deny_extensions=[])

    def parse(self, response):
        global pages, body_bytes
        pages += 1
        body_bytes += len(response.body)
        latencies.append(response.meta.get("download_latency", 0.0))
        if not hasattr(response, "text"):
            return
        for link in self.links.extract_links(response):
            # allow_domains compares host:port, so the scope check is here.
            if not link.nofollow and urlparse(link.url).hostname == "127.0.0.1":
                yield scrapy.Request(link.url, callback=self.parse)


started = time.time()
process = CrawlerProcess(
    settings={
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "DOWNLOAD_DELAY": 0,
        "ROBOTSTXT_OBEY": True,
        "HTTPCACHE_ENABLED": False,
        "AUTOTHROTTLE_ENABLED": False,
        "RETRY_ENABLED": False,
        "COOKIES_ENABLED": False,
        "LOG_LEVEL": "ERROR",
        "DEPTH_LIMIT": 64,
        "URLLENGTH_LIMIT": 2048,
        "HTTPERROR_ALLOW_ALL": True,
        "TELNETCONSOLE_ENABLED": False,
    }
)
process.crawl(TestWebSpider)
process.start()
elapsed = time.time() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
latencies.sort()
p99_ms = latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)] * 1000 if latencies else 0.0
print(json.dumps({"system": "scrapy", "pages": pages, "bytes": body_bytes, "seconds": elapsed,
                  "fetch_p99_ms": p99_ms, "peak_rss_kib": peak_kib, "queued": 0}))
