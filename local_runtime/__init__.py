"""The pipeline on one machine, with no Azure: what ``make local``, ``make up``, the tests and the
benchmarks start.

In: the Function App's code and settings. ``processes`` starts Azurite, the ACS emulator and the
services below as child processes on free 127.0.0.1 ports; ``stack`` composes them in
dependency order; ``api_server`` serves the API under uvicorn; ``archive_worker`` plays the
Functions host's queue trigger for the archiver; ``media_server`` is a controllable ACS media
source for archiver tests and benchmarks; ``demo`` drives a call through a running stack and
checks every archived file. Out: running local services, and the demo's verdict. The stack knows
nothing of the demo: ``scripts/local_stack.py`` composes the two.
"""
