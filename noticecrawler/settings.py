"""Scrapy settings for noticecrawler, and the one place environment variables are read.

Everything else receives these values: Scrapy components through ``crawler.settings``, plain
modules (the CLI, the notifier, the Celery app) by importing the constants below.
"""

import os
from pathlib import Path

BOT_NAME = "noticecrawler"
SPIDER_MODULES = ["noticecrawler.spiders"]
NEWSPIDER_MODULE = "noticecrawler.spiders"
#: Adds one spider per catalog board to the spiders found in SPIDER_MODULES.
SPIDER_LOADER_CLASS = "noticecrawler.spiders.loader.CatalogSpiderLoader"
#: ``scrapy crawl`` with one-line errors and an exit status that tells the truth
COMMANDS_MODULE = "noticecrawler.commands.scrapy_commands"

# --- environment (read here and nowhere else) -------------------------------------------------
#: Where the embedded PostgreSQL/Redis, the HTTP cache and other state live (git-ignored).
NOTICECRAWLER_HOME = os.environ.get("NOTICECRAWLER_HOME") or str(Path.cwd() / ".noticecrawler")
#: A PostgreSQL URL; empty means "start the embedded PostgreSQL under NOTICECRAWLER_HOME".
DATABASE_URL = os.environ.get("DATABASE_URL", "")
#: The board catalog (TOML); empty means the catalog shipped in the package.
NOTICECRAWLER_CATALOG = os.environ.get("NOTICECRAWLER_CATALOG", "")
#: Celery broker; empty means "start the embedded Redis under NOTICECRAWLER_HOME".
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
#: Firebase service-account JSON file and project id; without both, pushes go to the console.
FCM_CREDENTIALS_FILE = os.environ.get("FCM_CREDENTIALS_FILE", "")
FCM_PROJECT_ID = os.environ.get("FCM_PROJECT_ID", "")
#: Base URL of the FCM HTTP v1 API (tests point it at a fake server on 127.0.0.1).
FCM_ENDPOINT = os.environ.get("FCM_ENDPOINT", "")
#: pushes to an https FCM endpoint go through this proxy (CONNECT), unless NO_PROXY names it
FCM_HTTPS_PROXY = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or ""
FCM_NO_PROXY = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
#: a PEM bundle of the CAs FCM's certificate is verified against, instead of the system's
#: (a TLS-intercepting proxy's CA; benches and tests: the fake FCM's own). Verification stays on.
FCM_CA_FILE = os.environ.get("FCM_CA_FILE", "")
#: offer HTTP/2 to FCM (ALPN h2: many pushes per connection); "0" keeps to HTTP/1.1
FCM_HTTP2 = os.environ.get("FCM_HTTP2", "1").strip().lower() not in ("0", "false", "no", "off")
#: the push backend: auto (fcm when FCM credentials are set, else console), fcm or console
NOTIFY_SENDER = os.environ.get("NOTIFY_SENDER", "auto")
#: Android notification channel id for pushes.
FCM_ANDROID_CHANNEL = os.environ.get("FCM_ANDROID_CHANNEL", "notices")
#: iOS (APNs through FCM): the alert sound ("" for silent) and the app's bundle id (apns-topic)
FCM_APNS_SOUND = os.environ.get("FCM_APNS_SOUND", "default")
FCM_APNS_TOPIC = os.environ.get("FCM_APNS_TOPIC", "")
#: Port of the demo board server (the catalog's `demo` boards point at it).
DEMO_BOARD_PORT = int(os.environ.get("DEMO_BOARD_PORT", "8765"))
#: Base URL substituted for ``{demo}`` in catalog URLs.
DEMO_BOARD_URL = os.environ.get("DEMO_BOARD_URL") or f"http://127.0.0.1:{DEMO_BOARD_PORT}"
LOG_LEVEL = os.environ.get("NOTICECRAWLER_LOG_LEVEL", "INFO")
#: Level of Scrapy's own loggers in crawls a worker runs: its start-up lines and engine messages
#: are DEBUG-level detail there, and no stats are dumped (each run logs one summary line of ours,
#: its figures are in crawl_runs, the full stats at DEBUG). `scrapy crawl` by hand keeps both.
CRAWL_SCRAPY_LOG_LEVEL = os.environ.get("NOTICECRAWLER_CRAWL_SCRAPY_LOG_LEVEL", "WARNING")
#: Port of `noticecrawler exporter` (Prometheus metrics; `up` serves them there too).
NOTICECRAWLER_EXPORTER_PORT = int(os.environ.get("NOTICECRAWLER_EXPORTER_PORT", "9808"))
#: Celery result backend (crawl_site's summary); empty: the broker when it is Redis.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "")
#: Redis holding the one-crawl-per-board locks; empty: the result backend / broker when Redis.
CRAWL_LOCK_URL = os.environ.get("CRAWL_LOCK_URL", "")
#: Crawl time limits (seconds): at the soft one the crawl process is killed and the run recorded
#: as `time_limit`; the hard one kills the pool process. Lock expiry 0: hard limit + 60 s.
CRAWL_SOFT_TIME_LIMIT = int(os.environ.get("CRAWL_SOFT_TIME_LIMIT", "240"))
CRAWL_TIME_LIMIT = int(os.environ.get("CRAWL_TIME_LIMIT", "300"))
CRAWL_LOCK_EXPIRE = int(os.environ.get("CRAWL_LOCK_EXPIRE", "0"))
#: Redis redelivers an unacknowledged task after this long: longer than any task.
CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
#: The HTTP API (`noticecrawler api`, docs/api.md): where it listens, the browser origins allowed
#: to call it (comma-separated; empty: CORS off), requests per second and burst per token
#: (0: no limit), and its database pool size.
API_HOST = os.environ.get("NOTICECRAWLER_API_HOST", "127.0.0.1")
API_PORT = int(os.environ.get("NOTICECRAWLER_API_PORT", "8780"))
API_CORS_ORIGINS = os.environ.get("NOTICECRAWLER_API_CORS_ORIGINS", "")
API_RATE_LIMIT = float(os.environ.get("NOTICECRAWLER_API_RATE_LIMIT", "10"))
API_RATE_BURST = int(os.environ.get("NOTICECRAWLER_API_RATE_BURST", "50"))
API_POOL_SIZE = int(os.environ.get("NOTICECRAWLER_API_POOL_SIZE", "10"))
#: Who runs this crawler (URL or e-mail), sent in the User-Agent; the worker warns when unset.
NOTICECRAWLER_CONTACT = os.environ.get("NOTICECRAWLER_CONTACT", "")
#: Per host, across every crawl process sharing the lock Redis: requests in flight at most, and
#: seconds between two requests at least (see docs/hosts.md).
HOST_CONCURRENCY = int(os.environ.get("HOST_CONCURRENCY", "1"))
HOST_DELAY = float(os.environ.get("HOST_DELAY", "1.0"))


def _user_agent(contact: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("noticecrawler")
    except PackageNotFoundError:
        ours = "0"
    return f"noticecrawler/{ours} (+{contact or 'contact unset'})"


def child_env(**values: str) -> dict[str, str]:
    """The environment of a child process we start: ours, with ``values`` set."""
    return {**os.environ, **values}


# ---------------------------------------------------------------------------------------------

# robots.txt is obeyed (a board opts out with `robots = "ignore"` and a `reason`); the file is
# fetched at most once per host per HOST_ROBOTS_TTL seconds (noticecrawler.robots)
ROBOTSTXT_OBEY = True
HOST_ROBOTS_TTL = 86400
USER_AGENT = _user_agent(NOTICECRAWLER_CONTACT)
# per-host politeness shared across processes: noticecrawler.politeness.HostPoliteness; inside
# one crawl, Scrapy's own slots keep to the same limits
CONCURRENT_REQUESTS_PER_DOMAIN = HOST_CONCURRENCY
DOWNLOAD_DELAY = 0
#: Redis holding the per-host slots (the lock Redis; set by the crawl task). Empty: the limits
#: hold inside this one crawl only (Scrapy's download slots)
HOST_LIMITS_REDIS_URL = ""
#: longest wait a host may impose through Retry-After (seconds)
HOST_RETRY_AFTER_MAX = 600.0
#: a crawl whose host stays busy past this many seconds ends as `host_busy` (0: 80 % of
#: CRAWL_SOFT_TIME_LIMIT)
HOST_WAIT_MAX = 0.0
# list and detail pages, decompressed size included: over the limit the crawl ends as
# `page_too_large` (noticecrawler.sizes)
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
DOWNLOAD_TIMEOUT = 20
RETRY_ENABLED = True
RETRY_TIMES = 2
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
# Items of one list page are stored in one batch; the batch waits for the whole page, so the
# scraper must be able to hold a page's rows in flight at once.
CONCURRENT_ITEMS = 200

# List pages are revalidated on every run (ETag / If-Modified-Since): an unchanged board costs
# one request answered 304. Detail pages too, so an edit check is a conditional GET (details.py).
# The policy is RFC2616's without its freshness guess and without serving the cache for a 5xx
# (see httpcache.py).
HTTPCACHE_ENABLED = True
HTTPCACHE_POLICY = "noticecrawler.httpcache.RevalidatingPolicy"
HTTPCACHE_STORAGE = "scrapy.extensions.httpcache.FilesystemCacheStorage"
HTTPCACHE_DIR = str(Path(NOTICECRAWLER_HOME) / "httpcache")
HTTPCACHE_ALWAYS_STORE = True
HTTPCACHE_IGNORE_HTTP_CODES = [500, 502, 503, 504, 408, 429, 404, 403]

DOWNLOADER_MIDDLEWARES = {
    # the stock cache answers a download error with the cached page: a board that is down would
    # look unchanged. Ours lets the error through to the retry middleware and the errback.
    "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
    "noticecrawler.httpcache.NoErrorRecoveryCacheMiddleware": 900,
    # robots.txt cached per site for a day, shared (noticecrawler.robots), instead of Scrapy's
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "noticecrawler.robots.RobotsMiddleware": 100,
    # above the cache: an oversized page is stopped, never cached; the host slot is taken last
    # and given back first
    "noticecrawler.sizes.SizeGuard": 955,
    "noticecrawler.politeness.HostPoliteness": 960,
    # closest to the downloader: sees the real status before the cache turns a 304 into a 200
    "noticecrawler.middlewares.NotModifiedStatsMiddleware": 950,
}

#: log lines name a post (board/post id), never print the whole item
LOG_FORMATTER = "noticecrawler.logformatter.PostLogFormatter"

ITEM_PIPELINES = {
    "noticecrawler.pipelines.NormalizePipeline": 100,
    "noticecrawler.pipelines.StorePipeline": 300,
    "noticecrawler.pipelines.NotifyPipeline": 800,
}

EXTENSIONS = {
    "noticecrawler.pages.PageTracker": 0,
    "noticecrawler.extensions.CrawlRunRecorder": 500,
}

# --- noticecrawler's own settings -------------------------------------------------------------
#: The worker checks a board whose last run finished cleanly with one conditional GET of its
#: start URL (or, without validators, a digest of its rows) before forking a crawl; the crawl
#: runs only when the page changed (noticecrawler.revalidate)
NOTICECRAWLER_CHEAP_CHECK = True
#: Beat sends one `check_due` task at most every this many seconds, which checks every board whose
#: slot has passed in one process and forks crawls only for those that changed; 0: one
#: `crawl_site` per board at each of its slots (dispatch/schedule.py)
CRAWL_CHECK_TICK = float(os.environ.get("CRAWL_CHECK_TICK", "5"))
#: Pages the first crawl of a board reads at most (later crawls stop at the first known page).
NOTICECRAWLER_FIRST_CRAWL_MAX_PAGES = 3
#: Pages any crawl reads at most (a board entry's `max_pages` overrides it).
NOTICECRAWLER_MAX_PAGES = 10
#: Timezone of boards whose catalog entry (or [defaults]) names none: their local times are read,
#: and every command prints times, in it.
NOTICECRAWLER_DEFAULT_TIMEZONE = os.environ.get("NOTICECRAWLER_DEFAULT_TIMEZONE", "Asia/Seoul")
#: A lost database connection (PostgreSQL restarted) is opened again and the page's statement
#: retried for up to this many seconds before the crawl ends as `store_failed`.
NOTICECRAWLER_DB_RETRY_SECONDS = 30
#: Set by whoever runs the crawl while holding the board's lock (the worker, `scrapy crawl`):
#: the board's runs left `running` by a dead process are then closed as `killed`.
NOTICECRAWLER_BOARD_LOCK_HELD = False
#: `scrapy crawl <board>` takes the board's lock (refuses while a worker crawls the board).
NOTICECRAWLER_BOARD_LOCK = True
#: Dotted path of the function that sends `notify_post(post_id)` by name (None: do not notify).
NOTICECRAWLER_NOTIFY_SENDER = "noticecrawler.notify.port.send_notify_task"

FEED_EXPORT_ENCODING = "utf-8"

# --- notifications (see docs/notifications.md) ------------------------------------------------
#: devices per send_batch task (one Celery message per this many pushes)
NOTIFY_BATCH_SIZE = 2000
#: pushes in flight at once inside one send_batch task (keep-alive connections): with FCM
#: answering in ~tens of ms, a process pushes about this many per RTT (measured at 40 ms, 100k
#: devices, 2 processes: 200 → 5.9k pushes/s, 400 → 7.8k, 500 → 9.0k; FCM's quota is 10k/s)
NOTIFY_SEND_CONCURRENCY = 500
#: at most this many pushes of a batch are sent and not yet recorded (outcomes are stored every
#: half of it while the other half goes out): a worker killed mid-batch has pushed at most this
#: many devices without recording it (they get the push again, with the same tag / collapse id)
NOTIFY_RECORD_EVERY = 1024
#: tries per (post, device); after the last failed try the row is `failed`.
#: Retry n waits max(Retry-After, base * 2**(n-1)), at most the max (below the broker's
#: visibility timeout, or Redis would redeliver the waiting task)
NOTIFY_MAX_ATTEMPTS = 5
NOTIFY_RETRY_BASE_DELAY = 10.0
NOTIFY_RETRY_MAX_DELAY = 900.0
#: a claimed notification row is the claimer's for this long (renewed while it pushes)
NOTIFY_LEASE_SECONDS = 30.0
#: an enqueued row still untouched this long later is enqueued again by the sweep
NOTIFY_REQUEUE_AFTER = 30.0
NOTIFY_FCM_CONNECT_TIMEOUT = 5.0
NOTIFY_FCM_READ_TIMEOUT = 30.0
#: the sweep (beat): how often (it also enqueues the pushes that are due: retries, dead
#: workers' rows), after how long a post counts as stuck, how often at most one post is
#: re-sent, and how many posts one sweep handles
NOTIFY_SWEEP_INTERVAL = 5.0
NOTIFY_SWEEP_AGE = 120.0
NOTIFY_SWEEP_MAX_SENDS = 20
NOTIFY_SWEEP_LIMIT = 500

# --- the HTTP API's limits (docs/api.md) -------------------------------------------------------
#: per user: subscriptions, keywords (positive and negative together) and a keyword's length
API_MAX_SUBSCRIPTIONS = 20
API_MAX_KEYWORDS = 100
API_MAX_KEYWORD_LENGTH = 50
#: posts per page: default and most
API_PAGE_SIZE = 20
API_MAX_PAGE_SIZE = 100
#: a board's first page is served from memory this long (s): one query a second, not one per app
API_PAGE_CACHE_SECONDS = 1.0
#: a verified API token is trusted this long without asking the database: a revoked token stops
#: working within this many seconds (0: every request asks)
API_TOKEN_CACHE_SECONDS = 10.0
#: FastAPI's own OpenTelemetry spans and metrics for the API (for an operator who configures an
#: OpenTelemetry provider); off, a request skips FastAPI's per-request check for one
API_TELEMETRY = False
