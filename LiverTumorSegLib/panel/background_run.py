"""Run the engine's compute step on a worker thread, so that a GUI never freezes.

A GUI starts a `BackgroundSegmentation` and polls it from a timer on its main thread; `poll` hands back
what happened since the last poll, in order: `Progress` events, then one final `Finished`, `Failed` or
`Cancelled`. The GUI applies a finished result to its scene itself, on the main thread. Nothing here
touches Qt or MRML, so the machinery is tested headless with a fake logic.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Union

from ..errors import CancelledError

if TYPE_CHECKING:  # the pipeline imports torch; a GUI must be able to import this module without it
    from ..model.card import PostprocessingSpec
    from ..pipeline import CancelCheck, SegmentationResult
    from ..volume.space import Volume


class ComputeLogic(Protocol):
    """The step of a logic that may run off the main thread (`MrmlSegmentationLogic.compute`)."""

    def compute(self, volume: Volume, device: str = "auto",
                progressCallback: Callable[[float, str], None] | None = None,
                cancelEvent: CancelCheck = None, force: bool = False,
                postprocessing: PostprocessingSpec | None = None) -> SegmentationResult: ...


@dataclass(frozen=True)
class Progress:
    """The engine reached `fraction` (0 to 1) of its work; `message` says what it is doing."""

    fraction: float
    message: str


@dataclass(frozen=True)
class Finished:
    """The run ended with a result, ready to be applied on the main thread."""

    result: SegmentationResult


@dataclass(frozen=True)
class Failed:
    """The run ended with an error (the engine's message is meant for the user)."""

    error: Exception


@dataclass(frozen=True)
class Cancelled:
    """The run stopped at a cancel request; nothing was produced."""

    message: str


RunEvent = Union[Progress, Finished, Failed, Cancelled]


class BackgroundSegmentation:
    """One run of `logic.compute` on a worker thread, with a cancel request and an event queue."""

    def __init__(self, logic: ComputeLogic, volume: Volume, device: str = "auto",
                 postprocessing: PostprocessingSpec | None = None, force: bool = False):
        self._logic = logic
        self._arguments = (volume, device, force, postprocessing)
        self._cancel = threading.Event()
        self._events: queue.Queue[RunEvent] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="LiverTumorSeg", daemon=True)
        self.ended = False  # True once `poll` has handed back the final event

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def cancel(self) -> None:
        """Ask the engine to stop at its next check (between batches of slices)."""
        self._cancel.set()

    def poll(self) -> list[RunEvent]:
        """The events since the last poll, oldest first; after the final one, nothing more."""
        events: list[RunEvent] = []
        while not self.ended:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            events.append(event)
            self.ended = not isinstance(event, Progress)
        return events

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel and wait up to `timeout` seconds for the worker (e.g. when the scene closes)."""
        self.cancel()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _work(self) -> None:
        volume, device, force, postprocessing = self._arguments
        try:
            result = self._logic.compute(
                volume, device, lambda fraction, message: self._events.put(Progress(fraction, message)),
                self._cancel, force=force, postprocessing=postprocessing)
        except CancelledError as exc:
            self._events.put(Cancelled(str(exc)))
        except Exception as exc:  # noqa: BLE001 - every failure is relayed to the main thread
            self._events.put(Failed(exc))
        else:
            self._events.put(Finished(result))
