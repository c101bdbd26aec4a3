"""The Function App's code, packaged by flow: ``api``, ``archive``, ``registry``, ``operations``.

In: HTTP requests (``api``) and queued ACS events (``archive``), from ``function_app.py`` in
Azure or, locally, from uvicorn and a queue worker against Azurite and the emulator; operator
commands (``operations``). Out: ACS calls, archived blobs, and the registry both flows write
(``registry``). The modules at this level are the leaves every flow shares (settings, clients,
ids, hosts, links, clock, recording options, the manifest's name); they import no flow.
Nothing here imports the Functions host.
"""
