"""The background run the Slicer panel polls, driven by a fake logic (no model, no Slicer)."""

import threading
import time

import pytest

from LiverTumorSegLib.errors import CancelledError, InputVolumeError
from LiverTumorSegLib.panel.background_run import (
    BackgroundSegmentation,
    Cancelled,
    Failed,
    Finished,
    Progress,
)


class FakeLogic:
    """Stands in for `MrmlSegmentationLogic.compute`: reports the given steps, checking the cancel
    request before each, then returns a result or raises `error`. `gate`, when given, holds the
    worker before its first step until the test opens it."""

    def __init__(self, steps=(0.25, 0.5, 1.0), error=None, gate=None):
        self.steps, self.error, self.gate = steps, error, gate
        self.calls = []
        self.worker = None

    def compute(self, volume, device="auto", progressCallback=None, cancelEvent=None, force=False,
                postprocessing=None):
        self.calls.append((volume, device, force, postprocessing))
        self.worker = threading.current_thread()
        if self.gate is not None:
            self.gate.wait(10)
        for fraction in self.steps:
            if cancelEvent.is_set():
                raise CancelledError("Cancelled by the user; nothing was written.")
            progressCallback(fraction, f"step {fraction}")
        if self.error is not None:
            raise self.error
        return ("result of", volume)


def events_until_ended(run, timeout=10.0):
    events, deadline = [], time.monotonic() + timeout
    while not run.ended:
        assert time.monotonic() < deadline, "the run never ended"
        events += run.poll()
        time.sleep(0.005)
    return events


def test_progress_arrives_in_order_then_the_result_on_another_thread():
    logic = FakeLogic()
    run = BackgroundSegmentation(logic, "volume", "cpu", postprocessing="spec", force=True)
    run.start()
    events = events_until_ended(run)
    assert events == [Progress(0.25, "step 0.25"), Progress(0.5, "step 0.5"), Progress(1.0, "step 1.0"),
                      Finished(("result of", "volume"))]
    assert logic.calls == [("volume", "cpu", True, "spec")]
    assert logic.worker is not threading.main_thread()
    assert run.poll() == [], "nothing after the final event"


def test_cancel_ends_with_cancelled_and_no_result():
    gate = threading.Event()
    run = BackgroundSegmentation(FakeLogic(gate=gate), "volume")
    run.start()
    run.cancel()
    gate.set()
    events = events_until_ended(run)
    assert events == [Cancelled("Cancelled by the user; nothing was written.")]


def test_cancel_midway_keeps_the_progress_before_it():
    class CancelAfterFirstStep(FakeLogic):
        def compute(self, volume, device="auto", progressCallback=None, cancelEvent=None, **options):
            def report(fraction, message):
                progressCallback(fraction, message)
                run.cancel()
            return super().compute(volume, device, report, cancelEvent, **options)

    run = BackgroundSegmentation(CancelAfterFirstStep(), "volume")
    run.start()
    events = events_until_ended(run)
    assert [type(e) for e in events] == [Progress, Cancelled]


@pytest.mark.parametrize("error", [InputVolumeError("not a CT"), MemoryError(), RuntimeError("boom")])
def test_an_error_is_relayed_with_the_progress_before_it(error):
    run = BackgroundSegmentation(FakeLogic(steps=(0.3,), error=error), "volume")
    run.start()
    events = events_until_ended(run)
    assert events == [Progress(0.3, "step 0.3"), Failed(error)]
    assert events[-1].error is error


def test_stop_cancels_and_waits_for_the_worker():
    gate = threading.Event()
    logic = FakeLogic(gate=gate)
    run = BackgroundSegmentation(logic, "volume")
    run.start()
    threading.Timer(0.2, gate.set).start()
    run.stop(timeout=10)
    assert not logic.worker.is_alive()
    assert run.poll() == [Cancelled("Cancelled by the user; nothing was written.")]
