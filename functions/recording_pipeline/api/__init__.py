"""The API flow: where an HTTP request becomes an ACS call (and a registry change).

In: HTTP requests to ``/api/...`` (``app.create_app``, served by the Functions host or by uvicorn
locally), routed by ``routes/`` (one router per resource), authenticated by a function key
(``keys``) or, for callbacks, ACS's JWT (``callbacks``), validated against ACS's rules (``rules``,
``schemas``). ``control`` runs each operation: ACS through ``service`` and the registry through
``registry.writer``; ``archive_access`` serves manifests and download links. Out: ACS Call
Automation calls, registry changes, and JSON or problem-details answers (``problems``) with a
``Server-Timing`` header (``timing``).
"""
