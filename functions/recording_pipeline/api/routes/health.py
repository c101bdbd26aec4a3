"""Liveness and the OpenAPI document: the routes that touch neither ACS nor Storage."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from recording_pipeline.api.dependencies import require_caller
from recording_pipeline.api.keys import HEALTH_PATH
from recording_pipeline.api.schemas import HealthResponse

OPENAPI_PATH = "/api/openapi.json"

router = APIRouter()


# Keyed, as the Functions host would guard it (FastAPI's own openapi_url is off).
@router.get(OPENAPI_PATH, dependencies=[Depends(require_caller)], include_in_schema=False)
async def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get(HEALTH_PATH, response_model=HealthResponse, tags=["health"])
async def health() -> dict[str, str]:
    """Liveness: answers without calling ACS or Storage (no key needed)."""
    return {"status": "ok"}
