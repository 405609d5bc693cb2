"""django-scout's admin: read-only pages for every model, fast at millions of rows.

Importing this package registers them (Django's admin autodiscovery does it):
:mod:`.interactions` (sessions, interactions, events, callback deliveries) and
:mod:`.workflows` (workflow runs and their events).
"""

from . import interactions, workflows

__all__ = ["interactions", "workflows"]
