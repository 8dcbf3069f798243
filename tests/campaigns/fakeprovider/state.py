"""What the fake server's threads share: the faults to inject and what was accepted."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Faults:
    every_429: int = 0
    retry_after: float = 1.0
    every_503: int = 0
    every_500: int = 0
    every_hang: int = 0
    hang_seconds: float = 3.0
    reject: set = field(default_factory=set)
    throttle: set = field(default_factory=set)

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if key in ("reject", "throttle"):
                value = {str(v).lower() for v in value}
            setattr(self, key, value)


@dataclass
class Received:
    to: str
    key: str  # offerlab_id from the metadata
    batch: str
    subject: str
    text: str = ""
    html: str = ""
    headers: dict = field(default_factory=dict)
    message_id: str = ""
    provider: str = "postmark"


class FakeProvider:
    """The state shared by the server's threads."""

    def __init__(self, *, token: str = "fake-token", api_key: str = "fake-key", keep_bodies: bool = True):
        self.token, self.api_key, self.keep_bodies = token, api_key, keep_bodies
        self.faults = Faults()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.received: list[Received] = []
            self.by_batch: dict[str, list[Received]] = defaultdict(list)
            # Kept as messages arrive, so that a summary costs nothing: built from
            # `received` on every call it held the lock (and the GIL) for a pass over all of
            # them, and a bench polling it ten times a second slowed the sends it was
            # timing as they piled up (0.07 s a call at 100,000 messages, 0.8 s at 1,000,000).
            self.counts: dict[str, int] = defaultdict(int)
            self.requests = 0
            self.send_requests = 0
            self.outcomes: dict[str, int] = defaultdict(int)

    # -- what tests ask
    def per_recipient(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def summary(self) -> dict:
        with self.lock:
            return {
                "received": len(self.received),
                "recipients": len(self.counts),
                "requests": self.requests,
                "send_requests": self.send_requests,
                "outcomes": dict(self.outcomes),
            }

    # -- faults
    def next_fault(self) -> str | None:
        with self.lock:
            self.send_requests += 1
            n = self.send_requests
            f = self.faults
        for name, every in (("429", f.every_429), ("503", f.every_503), ("500", f.every_500), ("hang", f.every_hang)):
            if every and n % every == 0:
                return name
        return None

    def accept(self, items: list[Received]) -> None:
        with self.lock:
            for item in items:
                if not self.keep_bodies:
                    item.text = item.html = ""
                    item.headers = {}
                self.received.append(item)
                self.by_batch[item.batch].append(item)
                self.counts[item.to.lower()] += 1
