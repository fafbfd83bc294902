"""Celery's filesystem transport, with job priorities.

kombu's filesystem channel names each message file by its send time and serves the
oldest first, so the embedded default ignored ``priority``. Prefixing the file name with
the message's urgency makes the transport's own name sort serve the most urgent first,
oldest first within one priority, as the Redis transport does with its priority lists.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

MAX_PRIORITY = 9


class Channel(filesystem.Channel):
    # kombu's own base classes disagree on this signature; the filesystem one is followed.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # The prefix holds no '.': the parent's _get matches the queue on what follows it.
        urgency = MAX_PRIORITY - self._get_message_priority(payload)
        name = f"{urgency}-{int(round(monotonic() * 1000)):015d}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = f"{path}.partial"  # renamed whole, so a reader never sees half a message
        with open(partial, "wb", buffering=0) as f:
            f.write(str_to_bytes(dumps(payload)))
        os.replace(partial, path)


class Transport(filesystem.Transport):
    Channel = Channel
