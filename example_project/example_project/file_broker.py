"""kombu's file transport, with each message written in full before a worker can see it.

kombu's own ``filesystem`` transport creates a message's file, then writes it: a worker polling
the folder in between moves and reads an empty file, and its ``JSONDecodeError`` is an
unrecoverable error that stops the worker (seen as a demo whose interactions all stayed
``pending``). This channel writes each message under a hidden name, which the reader's filter
skips, and renames it into place, which is atomic within one folder. :mod:`.celery` makes this
the transport of ``filesystem://`` URLs.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

__all__ = ["Channel", "Transport"]


class Channel(filesystem.Channel):
    """A file channel whose messages appear whole (``_put`` keeps kombu's file channel's
    signature, which differs from its base class's)."""

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put ``payload`` onto ``queue``: written to a hidden file, then renamed into place."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: the reader only takes names whose part after the first dot is
        # "<queue>.msg".
        hidden = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(hidden, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(hidden, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    """kombu's file transport with :class:`Channel`."""

    Channel = Channel
