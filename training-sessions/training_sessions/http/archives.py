"""A model folder's archive as both services answer it: one attachment, under the stream caps."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

from starlette.requests import Request

from training_sessions.http.events import HeldStreamResponse, StreamSlots, limited_stream
from training_sessions.models import MEDIA_TYPES, ArchiveFormat

# The 200 answer of a download route in the OpenAPI documents.
ARCHIVE_OK: dict[str, Any] = {
    "description": "The model folder (and KTRDR's copy under ktrdr/) as one archive",
    "content": {media_type: {} for media_type in MEDIA_TYPES.values()},
}


async def archive_download(
    slots: StreamSlots,
    request: Request,
    model_id: str,
    archive_format: ArchiveFormat,
    opening: Callable[[], Awaitable[AsyncIterable[bytes]]],
) -> HeldStreamResponse:
    """``opening``'s bytes streamed as ``{model_id}.{format}``, holding a stream slot."""
    headers = {"Content-Disposition": f'attachment; filename="{model_id}.{archive_format}"'}
    return await limited_stream(slots, request, opening, MEDIA_TYPES[archive_format], headers)
