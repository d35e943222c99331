"""`livertumorseg web` in a subprocess for the tests: started on a free port of 127.0.0.1 (or the
given host), its URL read from what it prints, stopped with SIGTERM as a user's Ctrl+C would."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class Server:
    """`livertumorseg web` in a subprocess; `url` once it printed where to open it."""

    def __init__(self, *options: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "LiverTumorSegLib.cli", "web", "--port", "0", *options],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def _wait_for_url(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output[-30:])
                continue
            found = re.match(r"LiverTumorSeg web app: (http://\S+)", line)
            if found:
                return found.group(1)
        raise AssertionError("the server printed no URL:\n" + "".join(self.output[-30:]))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
