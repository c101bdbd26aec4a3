"""Media rendering: a plan of who is audible when (timeline), then one writer per format.

Every writer streams: it produces a block at a time from precomputed one-second tables, so
memory stays constant however long the recording is.
"""
