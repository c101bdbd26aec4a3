"""Which hosts may serve ACS recording media.

The Call Automation SDK refuses to send credentials to any other host; the archiver applies the
same rule to every location in an event before it downloads anything, so a forged event cannot
make it fetch (and store) data from elsewhere.

One check, never looser than the SDK's own validator (``recording_url_validator`` in
azure-communication-callautomation 1.6.0: ``urlparse``, scheme https, a host name ending, case
aside, in one of the suffixes below): a URL this module accepts, the SDK accepts too, so an event
that passes validation can never fail later on the SDK's check (a trailing dot did: the SDK
refused it, the error was retried and the recording marked failed). It is stricter where the SDK
is silent: every label of the host is a DNS label (no empty label, no trailing dot, no ``%``),
no user info, no port but 443, ASCII only, no control characters, spaces or backslashes (which
other URL parsers read differently). ``tests/unit/test_recording_hosts.py`` runs both checks
over a table of hosts and generated URLs.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

ACS_MEDIA_HOST_SUFFIXES = (
    ".asm.skype.com",
    ".asyncgw.teams.microsoft.com",
    ".ams.gov.teams.microsoft.us",
)
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_HOST_NAME = 253


def is_acs_media_host(host: str) -> bool:
    """A DNS name under one of the ACS media domains (case-insensitive, no trailing dot)."""
    lowered = host.lower()
    if len(lowered) > _MAX_HOST_NAME or not lowered.isascii():
        return False
    if not any(lowered.endswith(suffix) for suffix in ACS_MEDIA_HOST_SUFFIXES):
        return False
    return all(_DNS_LABEL.fullmatch(label) for label in lowered.split("."))


def is_acs_media_url(url: str) -> bool:
    """True for an absolute https URL on an ACS media host (no credentials, no odd port).

    Anything ``urlparse`` cannot take apart (a port out of range or not a number, a broken IPv6
    literal, non-ASCII) is simply not an ACS media URL: the caller rejects it with a reason.
    """
    if not url.isascii() or any(char <= " " or char in "\x7f\\" for char in url):
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
