"""A recording's archive: its manifest and short-lived links to its files (``archive_access``).

Both routes sit under the item path ``/api/recordings/{recordingId}/``; the app mounts this
router before the item routes (see ``app.ROUTERS``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from recording_pipeline.api.dependencies import KEYED, KEYED_RESPONSES, RecordingIdPath, Services
from recording_pipeline.api.problems import problem_responses
from recording_pipeline.api.rules import validate_recording_id
from recording_pipeline.api.schemas import ArchivedFileLink, ArchiveManifest

router = APIRouter(dependencies=KEYED, responses=KEYED_RESPONSES, tags=["archive"])


@router.get(
    "/api/recordings/{recordingId:path}/archive/manifest",
    response_model=None,
    responses={
        200: {"model": ArchiveManifest, "description": "The stored manifest.json."},
        **problem_responses(400, 401, 404, 409, 502, 503),
    },
)
async def get_archive_manifest(recordingId: RecordingIdPath, services: Services) -> Response:  # noqa: N803
    """The recording's `manifest.json` byte for byte (409 while it is not archived)."""
    body = await run_in_threadpool(services.archive.manifest, validate_recording_id(recordingId))
    return Response(content=body, media_type="application/json")


@router.get(
    "/api/recordings/{recordingId:path}/archive/files/{fileName:path}",
    response_model=ArchivedFileLink,
    responses=problem_responses(400, 401, 404, 409, 502, 503),
)
async def get_archived_file(
    recordingId: RecordingIdPath,  # noqa: N803
    fileName: Annotated[  # noqa: N803
        str,
        Path(
            description="A file the manifest lists: `chunk-0000.wav`, "
            "`chunk-0000.metadata.json`, `manifest.json`."
        ),
    ],
    services: Services,
) -> dict[str, Any]:
    """A 15-minute read-only link to one archived file, with its size and MD5.

    The file is not sent through the API (recordings can be gigabytes); GET the `url` from
    Blob Storage and check the bytes against `size` and `contentMd5`.
    """
    return await run_in_threadpool(
        services.archive.file_link, validate_recording_id(recordingId), fileName
    )
