"""Identifiers shaped like the real ones, so clients that parse or encode them are exercised.

Recording ids are standard base64 (with ``+``, ``/`` and ``=`` possible) of a small JSON
document, as ACS's are; ``IdFactory.recording_id_suffix`` forces those characters in tests.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass


@dataclass
class IdFactory:
    region_code: str = "emu"
    recording_id_suffix: str = ""

    def recording_id(self) -> str:
        document = {
            "PlatformEndpointId": str(uuid.uuid4()),
            "ResourceSpecificId": str(uuid.uuid4()),
            "Nonce": secrets.token_hex(3),
        }
        encoded = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
        return encoded + self.recording_id_suffix

    def server_call_id(self) -> str:
        locator = f"https://{self.region_code}.conv.emulator.local/conv/{uuid.uuid4()}?i=1&e=0"
        return base64.urlsafe_b64encode(locator.encode()).decode().rstrip("=")

    def document_id(self) -> str:
        return f"0-{self.region_code}-d{secrets.randbelow(20)}-{secrets.token_hex(16)}"

    @staticmethod
    def guid() -> str:
        return str(uuid.uuid4())
