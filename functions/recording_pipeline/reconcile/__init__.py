"""The retention-window guard: what the event-driven archive misses, found and repaired in time.

ACS keeps a recording for about 24 hours, and the archive flow runs only when its event arrives.
In: a timer tick (``function_app.py``, every ``RECONCILE_SCHEDULE``) or a person's command
(``scripts/reconcile.py``), both calling :func:`run.run` with the Function App's settings. Each
run puts dead-lettered events back on the events queue (``dead_letters``), replays poisoned
events whose failure was an outage, a bounded number of times (``poison``), repairs the
stopped-recordings index from the recording entities now and then (``sweep``), marks recordings
stopped with no event ``overdue`` and, past the retention window, ``lost`` (``overdue``), and
retries deletions from ACS that did not happen (``acs_deletes``). Out: queue messages, registry
writes, log markers the alerts match, and a report (``report``) as one line and as JSON.
"""
