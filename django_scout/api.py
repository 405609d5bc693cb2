"""The host-facing API of django-scout.

```python
from django_scout.api import start_interaction

interaction = start_interaction("agent_123", "Summarise ticket 42", subject=ticket)
```
"""

from __future__ import annotations

from .services import start_interaction

__all__ = ["start_interaction"]
