"""The ``recordings`` command-line tool: people's way to the recording API, local or deployed.

In: a command line (``scripts/recordings``, ``python -m scripts.recordings`` or ``python -m
recordings_cli``). ``cli`` parses it and prints the answers; ``client`` speaks HTTP to the API
and to Blob Storage through the links the API hands out. Out: API calls, verified files on disk,
tables or JSON on stdout, one-line errors on stderr and the exit code. It imports nothing from the
function code: the API is its only contract.
"""
