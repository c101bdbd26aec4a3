"""A local Azure Communication Services Call Recording emulator.

It speaks the Call Recording REST API exactly as ``azure-communication-callautomation`` sends it,
renders checkable media (one tone and one video tile per participant), serves it from ACS-shaped
media URLs and delivers ``RecordingFileStatusUpdated`` events the way Event Grid does, so the
recording pipeline runs and is tested without Azure. ``python -m emulator --help`` lists options.
"""
