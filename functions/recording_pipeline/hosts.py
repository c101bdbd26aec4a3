"""Which hosts may serve ACS recording media.

The Call Automation SDK refuses to send credentials to any other host; the archiver applies the
same rule to every location in an event before it downloads anything, so a forged event cannot
make it fetch (and store) data from elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlparse

ACS_MEDIA_HOST_SUFFIXES = (
    ".asm.skype.com",
    ".asyncgw.teams.microsoft.com",
    ".ams.gov.teams.microsoft.us",
)


def is_acs_media_host(host: str) -> bool:
    lowered = host.lower().rstrip(".")
    return any(lowered.endswith(suffix) for suffix in ACS_MEDIA_HOST_SUFFIXES)


def is_acs_media_url(url: str) -> bool:
    """True for an absolute https URL on an ACS media host (no credentials, no odd port).

    Anything ``urlparse`` cannot take apart (a port out of range or not a number, a broken IPv6
    literal, non-ASCII) is simply not an ACS media URL: the caller rejects it with a reason.
    """
    if not url.isascii():
        return False
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        return False
    return (
        parsed.scheme == "https"
        and parsed.hostname is not None
        and parsed.username is None
        and parsed.password is None
        and port in (None, 443)
        and is_acs_media_host(parsed.hostname)
    )
