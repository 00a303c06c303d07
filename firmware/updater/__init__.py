"""Firmware updates: signed release bundles installed side by side, switched atomically, on trial.

Layout under the install root (``/opt/outpost`` on an appliance)::

    releases/<version>/         one complete release: its wheels and its own virtualenv
    current -> releases/<v>     what systemd starts (switched by rename, never edited in place)
    previous -> releases/<v>    the last committed release, always kept, the rollback target
    updater/state.json          the journal of the one update in progress (atomic writes)
    updater/downloads/          bundles being downloaded (``.part`` files resume with HTTP Range)

See docs/updates.md for the state machine and the guarantees at every step.
"""
