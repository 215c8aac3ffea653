"""Decode, restore and encode overlapped: two worker threads and the caller, bounded queues between.

    source thread ──queue(depth)──> work thread ──queue(depth)──> caller (encoder / generator)

The source (demux + decode, or reading a pipe) runs in one thread and the restoration in another
while the caller consumes results, so throughput is set by the slowest stage and at most
2·depth + 3 batches are in flight. An exception in a stage travels down the queues in order and
is raised to the caller after the results before it; when the caller stops (an error of its
own, Ctrl-C, a generator closed early) the stages stop at their next queue operation.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Optional, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")
_POLL_S = 0.05


class Aborted(Exception):
    """Raised inside a stage once the pipeline is stopping; the stage just ends."""


@dataclass
class StageClock:
    """Busy seconds and frames of one stage (waiting on queues is not counted)."""

    name: str
    seconds: float = 0.0
    frames: int = 0

    def add(self, seconds: float, frames: int = 0) -> None:
        self.seconds += seconds
        self.frames += frames

    def timed(self, frames: int = 0) -> "_Timed":
        """`with clock.timed(n): ...` adds the block's wall time and n frames."""
        return _Timed(self, frames)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


class _Timed:
    def __init__(self, clock: StageClock, frames: int):
        self.clock, self.frames = clock, frames

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.clock.add(time.perf_counter() - self.t0, self.frames)


class _Failed:
    """An exception travelling down the queues in place of a result."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class StopFlag:
    """Shared by the stages: set when the caller stops; blocking calls poll it."""

    def __init__(self):
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def put(self, q: "queue.Queue", item) -> None:
        while True:
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if self.is_set():
                    raise Aborted from None

    def get(self, q: "queue.Queue"):
        while True:
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                if self.is_set():
                    raise Aborted from None


def run_ordered(source: Iterable[T], work: Callable[[T], U], depth: int = 2,
                stop: Optional[StopFlag] = None) -> Iterator[U]:
    """Yield `work(item)` for every item of `source`, in order, overlapping the three stages.

    `source` is iterated in one thread, `work` runs in another, the caller consumes. `stop` lets
    the source and work block on other resources (buffer pools) and still notice a stop.
    """
    if depth < 1:
        raise ValueError(f"queue depth must be at least 1, got {depth}")
    stop = stop or StopFlag()
    inbox: "queue.Queue" = queue.Queue(depth)
    outbox: "queue.Queue" = queue.Queue(depth)

    def produce():
        try:
            for item in source:
                stop.put(inbox, item)
            stop.put(inbox, _END)
        except Aborted:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the caller in order
            _forward(stop, inbox, e)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def transform():
        try:
            while True:
                item = stop.get(inbox)
                if item is _END or isinstance(item, _Failed):
                    stop.put(outbox, item)
                    return
                stop.put(outbox, work(item))
        except Aborted:
            pass
        except BaseException as e:  # noqa: BLE001
            _forward(stop, outbox, e)

    threads: List[threading.Thread] = [
        threading.Thread(target=produce, name="irflow-source", daemon=True),
        threading.Thread(target=transform, name="irflow-restore", daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        while True:
            item = stop.get(outbox)
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        for t in threads:
            # A stage inside a long call (a network evaluation) finishes it first; don't wait on it.
            t.join(timeout=1.0)
            if t.is_alive():
                log.debug("%s still finishing its current batch", t.name)


def _forward(stop: StopFlag, q: "queue.Queue", error: BaseException) -> None:
    try:
        stop.put(q, _Failed(error))
    except Aborted:
        pass
