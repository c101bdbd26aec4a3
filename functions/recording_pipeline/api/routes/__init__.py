"""The API's routes: one module-level router per resource, mounted in order by ``app.create_app``.

In: an HTTP request, its path and query parameters and its body (validated by ``schemas``). Out:
a call into ``control``, ``archive_access`` or ``callbacks`` with the app's services
(``dependencies``), and the answer it returns or the problem it raises.
"""
