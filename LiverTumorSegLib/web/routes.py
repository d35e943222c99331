"""The app's HTTP routes beside trame's websocket: uploads streamed to disk (`POST
/lts/upload/BATCH?name=...&folder=...`) and result downloads (`GET /lts/download/TOKEN/KIND`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .files import UploadBatch, UploadError

if TYPE_CHECKING:
    from pathlib import Path

_BATCH = re.compile(r"^[A-Za-z0-9]{6,64}$")
# What a download handler is given: the kind of file; what it returns: the file, or None.
ExportFile = Callable[[str], Awaitable["Path | None"]]
NewBatch = Callable[[str, str], UploadBatch]


def add_routes(app: web.Application, new_batch: NewBatch, export_file: ExportFile,
               token: str) -> None:
    """Register the upload and download routes on trame's aiohttp application. `new_batch(batch,
    folder)` gives the upload batch a browser's batch id stands for; `export_file(kind)` writes
    the results (if needed) and returns the file of that kind."""

    async def upload(request: web.Request) -> web.Response:
        batch_id = request.match_info["batch"]
        if not _BATCH.match(batch_id):
            return web.Response(status=400, text="An upload needs a batch id of letters and digits.")
        try:
            batch = new_batch(batch_id, request.query.get("folder", ""))
            await batch.receive(request.query.get("name", "upload"),
                                request.content.iter_chunked(1 << 20))
        except UploadError as exc:
            return web.Response(status=413, text=str(exc))
        return web.Response(text="ok")

    async def download(request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != token:
            return web.Response(status=404, text="No such download; reload the page.")
        path = await export_file(request.match_info["kind"])
        if path is None:
            return web.Response(status=404, text="Nothing to download yet; segment the case first.")
        return web.FileResponse(path, headers={
            "Content-Disposition": f'attachment; filename="{path.name}"',
            "Cache-Control": "no-store"})

    app.router.add_post("/lts/upload/{batch}", upload)
    app.router.add_get("/lts/download/{token}/{kind}", download)
