"""Starting the web app: the `web` command's options, the warning when it listens beyond this
machine, refusals before it listens, and the workspace removed when it stops (no browser needed)."""

import re
import time
from pathlib import Path

import pytest

from LiverTumorSegLib.cli import build_parser, main

pytest.importorskip("trame_slicer", reason="the web extra is not installed: pip install -e '.[web]'")
from web_server import Server  # noqa: E402

from LiverTumorSegLib.web.server import listens_beyond_this_machine  # noqa: E402


def test_web_options_and_defaults():
    args = build_parser().parse_args(["web"])
    assert (args.host, args.port, args.data, args.device, args.max_upload_mb) == \
        ("127.0.0.1", 8080, None, "auto", 2048)
    assert [listens_beyond_this_machine(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0")] \
        == [False, False, False, True]


def test_a_missing_data_folder_is_refused_before_listening(tmp_path, capsys):
    assert main(["web", "--data", str(tmp_path / "absent"), "--port", "0"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_listening_beyond_this_machine_warns_and_the_workspace_goes_at_exit():
    server = Server("--host", "0.0.0.0")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("warning: listening on 0.0.0.0" in line
                                                      for line in server.output):
            time.sleep(0.2)
        assert any("other machines can open this app" in line for line in server.output)
        assert re.match(r"http://0\.0\.0\.0:\d+/", server.url)
        [workspace] = [Path(m.group(1)) for line in server.output
                       for m in [re.match(r"Uploads and results are kept in (\S+) until", line)] if m]
        assert workspace.is_dir()
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert not workspace.exists(), "the private workspace is removed when the app stops"
