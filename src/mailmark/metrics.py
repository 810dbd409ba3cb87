"""Every Prometheus metric of a Mailmark process, in one place.

One `Metrics` per process (bootstrap builds it and hands it to each listener and worker), with a
registry of its own rather than prometheus_client's global one: several servers in one process
(the tests start many) count apart. Labels take bounded values only: listener names, statuses,
SMTP reply codes of our own replies, route templates (never raw paths), and destination domains
from a configured list (every other domain is `remote`).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Collection, Sequence
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
)
from prometheus_client.exposition import generate_latest

from mailmark.core.queue_admin import QueueDepth

# The Prometheus text exposition format, version 0.0.4.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
LOCAL_DESTINATION: Final = "local"
REMOTE_DESTINATION: Final = "remote"
# Requests that matched no route: one label for all of them, whatever their path.
UNMATCHED_ROUTE: Final = "unmatched"
# HTTP methods a label may name; any other token a client sends is "other" (a client choosing
# label values could otherwise grow the registry without end).
HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds; from a cheap JSON answer to a slow search or upload.
HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# "550 5.1.1 …" → "550 5.1.1"; "452 Too many …" → "452". Our replies' codes are a fixed set.
_REPLY_CODE = re.compile(r"^([2-5]\d\d)(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?")


def reply_code(reply: str) -> str:
    """The basic and enhanced status of an SMTP reply line, as a label value."""
    match = _REPLY_CODE.match(reply)
    if match is None:
        return "other"
    return f"{match[1]} {match[2]}" if match[2] else match[1]


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


class Metrics:
    """The counters, gauges and histograms, and the text a scrape returns."""

    def __init__(self, *, destination_domains: Collection[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._destination_domains = frozenset(domain.lower() for domain in destination_domains)
        registry = self.registry
        self.smtp_connections = Counter(
            "mailmark_smtp_connections",
            "SMTP connections, admitted or refused by the connection limits.",
            ["listener", "result"],
            registry=registry,
        )
        self.smtp_messages_accepted = Counter(
            "mailmark_smtp_messages_accepted",
            "Messages answered 250 at the end of DATA.",
            ["listener"],
            registry=registry,
        )
        self.smtp_refusals = Counter(
            "mailmark_smtp_refusals",
            "Refused MAIL FROM, RCPT TO and DATA commands, by the reply's code (the reason).",
            ["listener", "stage", "code"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "mailmark_queue_depth",
            "Outbound queue rows waiting, by status (read from the database at scrape time).",
            ["status"],
            registry=registry,
        )
        self.queue_oldest_age = Gauge(
            "mailmark_queue_oldest_age_seconds",
            "Age of the oldest waiting outbound queue row, by status (0 when none).",
            ["status"],
            registry=registry,
        )
        self.queue_scrape_ok = Gauge(
            "mailmark_queue_scrape_ok",
            "1 when the queue figures of this scrape could be read from the database, else 0.",
            registry=registry,
        )
        self.deliveries = Counter(
            "mailmark_deliveries",
            "Outbound delivery attempts recorded, by result and destination (local: hosted "
            "here; a configured domain; remote: any other).",
            ["result", "destination"],
            registry=registry,
        )
        self.imap_sessions = Gauge(
            "mailmark_imap_sessions",
            "IMAP sessions open now.",
            ["listener"],
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "mailmark_http_request_duration_seconds",
            "HTTP requests by route template and status class, and how long they took.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "mailmark_webhook_deliveries",
            "Webhook delivery attempts, by result (delivered, retrying, failed).",
            ["result"],
            registry=registry,
        )
        # The process's memory, CPU and descriptors, and the garbage collector's work: what the
        # operations page's alerts on growth read.
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        Gauge(
            "mailmark_gc_frozen_objects",
            "Objects alive at start-up that the garbage collector no longer walks (gc.freeze).",
            registry=registry,
        ).set_function(gc.get_freeze_count)

    def destination(self, domain: str, *, local: bool) -> str:
        """The destination label of a recipient domain: bounded by the configured list."""
        if local:
            return LOCAL_DESTINATION
        domain = domain.lower()
        return domain if domain in self._destination_domains else REMOTE_DESTINATION

    def exposition(self, queue: Sequence[QueueDepth] | None) -> bytes:
        """The text of a scrape, with the queue figures just read (None: they could not be)."""
        if queue is None:
            self.queue_scrape_ok.set(0)
        else:
            self.queue_scrape_ok.set(1)
            for depth in queue:
                self.queue_depth.labels(str(depth.status)).set(depth.count)
                self.queue_oldest_age.labels(str(depth.status)).set(depth.oldest_age_seconds)
        return generate_latest(self.registry)
