"""The registry: the one table both flows write, and the only code that knows its schema.

In: the API's recording changes (a start, an operation, a callback, an Idempotency-Key) through
the deferred writer (``writer``) and the state machine (``states``); the archive's progress and
participant index through ``archive_writes``. Out: what readers see (``views``), read through
``table``. Every key and property name is in ``schema``.
"""
