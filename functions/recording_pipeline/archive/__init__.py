"""The archive flow: where an ACS event becomes an archived, verified blob.

In: a ``RecordingFileStatusUpdated`` queue message (``archiver.handle_event_message``, called by
the queue trigger in ``function_app.py`` and by the local worker). It is validated (``events``),
each chunk is read from ACS in ranges (``media_source``) and streamed into staged blocks
(``chunk_copy``, ``resumable_md5``) at the place ``layout`` names, with its metadata
(``chunk_metadata``); the manifest (``manifest``) is written last. Out: blobs in the recordings
container, the registry's ``Archive*`` properties and participant index (through
``registry.archive_writes``), and rejected messages on the poison queue (``poison``).
"""
