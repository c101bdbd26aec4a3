"""Fixtures of the Pulumi program tests: whole-program runs under mocks, shared per session
(a run takes ~0.3 s but pulumi-azure-native's import takes seconds, so one process runs all).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.fake_scm import FakeScm
from tests.infra.harness import ProgramRun, run_program_with_outputs


@pytest.fixture(scope="session")
def default_run() -> ProgramRun:
    """The program with every config key at its default, as ``pulumi up`` would run it."""
    return run_program_with_outputs()


@pytest.fixture(scope="session")
def preview_run() -> ProgramRun:
    """The same program as ``pulumi preview`` runs it."""
    return run_program_with_outputs(preview=True)


@pytest.fixture(scope="session")
def private_run() -> ProgramRun:
    """The program with ``network: private`` and every other key at its default."""
    return run_program_with_outputs({"network": "private"})


@pytest.fixture
def fake_scm() -> Iterator[FakeScm]:
    """A scripted SCM/ARM stand-in on a free loopback port, stopped after the test."""
    server = FakeScm().start()
    try:
        yield server
    finally:
        server.stop()
