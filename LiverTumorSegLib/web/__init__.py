"""The web app (`livertumorseg web`): open a CT in a browser, segment it, correct it and download the
results, on Slicer's web stack (trame-slicer). A room built on the engine and `mrml/`, imported by
nothing else; it needs the `web` extra (`pip install -e '.[web]'`).

`files.py` (workspace, uploads, `--data` listing), `cases.py` (what can be opened), `session.py` (the
open case on the scene: segment, edits, exports; no browser), `views.py`, `editor.py`, `page.py`,
`routes.py` (HTTP uploads and downloads), `app.py` (the handlers), `server.py` (start and stop).
"""
