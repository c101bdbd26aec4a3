"""The archiver's media-host check and the Call Automation SDK's own validator agree.

The SDK (azure-communication-callautomation 1.6.0, ``recording_url_validator``) refuses to send
credentials to any URL but https on an ACS media domain. Every URL the archiver accepts must pass
it too, or an event that passed validation fails later on the SDK's check, is retried as if the
failure were transient, and leaves a registry row behind. The archiver may be stricter.
"""

from __future__ import annotations

import pytest
from azure.communication.callautomation.recording_url_validator import validate_recording_url
from hypothesis import given, settings
from hypothesis import strategies as st

from recording_pipeline.hosts import ACS_MEDIA_HOST_SUFFIXES, is_acs_media_url


def sdk_accepts(url: str) -> bool:
    try:
        validate_recording_url(url, "source_location")
    except (TypeError, ValueError):
        return False
    return True


# (url, the archiver accepts it, the SDK accepts it)
HOSTS: list[tuple[str, bool, bool]] = [
    ("https://us-storage.asm.skype.com/v1/objects/d", True, True),
    ("https://weu.asyncgw.teams.microsoft.com/v1/objects/d", True, True),
    ("https://gov.ams.gov.teams.microsoft.us/v1/objects/d", True, True),
    ("https://US-STORAGE.ASM.SKYPE.COM/v1/objects/d", True, True),
    ("HTTPS://us-storage.asm.skype.com/v1/objects/d", True, True),
    ("https://us-storage.asm.skype.com:443/v1/objects/d", True, True),
    ("https://xn--bcher-kva.asm.skype.com/v1/objects/d", True, True),  # IDN as punycode
    ("https://a-b.c1.asm.skype.com/v1/objects/d", True, True),
    ("https://emulator.asm.skype.com./v1/objects/d", False, False),  # trailing dot
    ("https://us-storage.asm.skype.com:8443/v1/objects/d", False, True),  # another port
    ("https://user:pw@us-storage.asm.skype.com/v1/objects/d", False, True),  # user info
    ("https://user@us-storage.asm.skype.com/v1/objects/d", False, True),
    ("https://.asm.skype.com/v1/objects/d", False, True),  # empty label
    ("https://a..asm.skype.com/v1/objects/d", False, True),  # empty label inside
    ("https://-a.asm.skype.com/v1/objects/d", False, True),  # label starts with a hyphen
    ("https://a%2e.asm.skype.com/v1/objects/d", False, True),  # percent in the host
    ("https://a_b.asm.skype.com/v1/objects/d", False, True),  # underscore is no DNS label
    ("https://b\u00fccher.asm.skype.com/v1/objects/d", False, True),  # IDN unencoded
    ("https://us-storage.asm.skype.com\\@evil.example/v1/objects/d", False, False),
    ("https://evil.example\\.asm.skype.com/v1/objects/d", False, True),  # backslash
    ("https://evil.example/.asm.skype.com", False, False),
    ("https://asm.skype.com/v1/objects/d", False, False),  # the bare suffix
    ("https://asm.skype.com.evil.example/v1/objects/d", False, False),
    ("https://evilasm.skype.com/v1/objects/d", False, False),
    ("https://[::1]/v1/objects/d", False, False),  # IPv6 literal
    ("https://127.0.0.1/v1/objects/d", False, False),
    ("http://us-storage.asm.skype.com/v1/objects/d", False, False),
    ("//us-storage.asm.skype.com/v1/objects/d", False, False),
    ("/v1/objects/d", False, False),
    ("https://us-storage.asm.skype.com/v1/objects/d\r\nX: y", False, True),
    ("https://us-storage.asm.skype.com/v1/ob jects/d", False, True),
    ("https://us-storage.asm.skype.com:99999/v1/objects/d", False, True),
    ("https://us-storage.asm.skype.com:abc/v1/objects/d", False, True),
]


@pytest.mark.parametrize(("url", "archiver", "sdk"), HOSTS, ids=[f"{n}" for n in range(len(HOSTS))])
def test_the_archiver_accepts_only_what_the_sdk_accepts(
    url: str, archiver: bool, sdk: bool
) -> None:
    assert sdk_accepts(url) is sdk, "the table's SDK column is wrong: the SDK changed?"
    assert is_acs_media_url(url) is archiver


@pytest.mark.parametrize(
    "url",
    [
        "https://[us-storage.asm.skype.com/v1/objects/x",  # broken IPv6 literal
        "https://[us-storage.asm.skype.com]/v1/objects/x",  # not an IP literal
        "https://us-storage.asm.skype.com/v1/objects/\u00e9",  # non-ASCII
        "",
    ],
)
def test_urls_the_parser_cannot_take_apart_are_refused(url: str) -> None:
    assert not is_acs_media_url(url)


_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.%[]:@\\/ \u00fc"
_hosts = st.builds(
    "{}{}".format,
    st.text(alphabet=_LABEL_CHARS, max_size=30),
    st.sampled_from([*ACS_MEDIA_HOST_SUFFIXES, ".asm.skype.com.", "", ".example.com"]),
)
_urls = st.builds(
    "{}://{}{}{}{}".format,
    st.sampled_from(["https", "HTTPS", "http", ""]),
    st.sampled_from(["", "u@", "u:p@", "@"]),
    _hosts,
    st.sampled_from(["", ":443", ":8443", ":", ":x", ":70000"]),
    st.sampled_from(["/v1/objects/d", "", "?a=b", "#f", "/\\x", "/a b"]),
)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(_urls)
def test_every_generated_url_the_archiver_accepts_the_sdk_accepts(url: str) -> None:
    if is_acs_media_url(url):
        assert sdk_accepts(url), url
