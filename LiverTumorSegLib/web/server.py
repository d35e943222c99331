"""Start the web app (`livertumorseg web`), print where to open it, and clean up at exit."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from ..errors import LiverTumorSegError
from .files import check_data_folder

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def listens_beyond_this_machine(host: str) -> bool:
    """Whether binding `host` lets other machines reach the app."""
    return host not in LOCAL_HOSTS


def serve(host: str = "127.0.0.1", port: int = 8080, data: str | None = None,
          device: str = "auto", max_upload_mb: int = 2048, model: str | None = None) -> int:
    """Run the app until interrupted; the workspace (uploads, exports) is removed at exit."""
    data_dir: Path | None = check_data_folder(data) if data else None
    if max_upload_mb <= 0:
        raise LiverTumorSegError("--max-upload-mb must be a positive number of megabytes.")
    if not os.environ.get("DISPLAY"):  # no X server: render with EGL instead of trying X first
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from trame_server.utils.asynchronous import create_task

    from ..dicom import series  # noqa: F401 - readers imported here, on the main thread, not
    from ..inputs import read_input  # noqa: F401 - first inside a worker thread reading a case
    from ..pipeline import Segmenter

    # Converting the model for OpenVINO crashed the process once trame-slicer's views existed, so
    # the model is loaded (and converted into its cache, the first time) before they are made.
    Segmenter(model, device)
    from .app import LiverTumorSegWebApp

    app = LiverTumorSegWebApp(data_dir=data_dir, device=device, max_upload_mb=max_upload_mb,
                              model_card=model)

    def ready(**_) -> None:
        shown = f"[{host}]" if ":" in host else host
        print(f"LiverTumorSeg web app: http://{shown}:{app.server.port}/", flush=True)
        print(f"Uploads and results are kept in {app.workspace.root} until the app stops.",
              flush=True)
        if listens_beyond_this_machine(host):
            print(f"warning: listening on {host}: other machines can open this app and its "
                  "cases; use --host 127.0.0.1 to keep it on this machine.", file=sys.stderr,
                  flush=True)
        create_task(app.open_demo())

    app.session.logic.segmenter(device)  # from the cache now; the first Segment need not wait
    app.server.controller.on_server_ready.add(ready)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        app.server.start(host=host, port=port, open_browser=False, show_connection_info=False,
                         disable_logging=True)
    finally:
        app.close()
    return 0
