"""The Function App's code: recording-control API, callbacks, registry and archiver.

The same modules run inside Azure Functions (see ``function_app.py``) and, locally, under uvicorn
and a queue worker against Azurite and the emulator; nothing here imports the Functions host.
"""
