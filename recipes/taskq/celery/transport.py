"""kombu's Redis transport, except that one unreadable item in a queue does not stop the worker.

kombu parses each item it pops from a queue list as a JSON message, and a parse error escapes
to Celery's event loop as an "Unrecoverable error": the whole worker exits, and the jobs it was
running come back only after the visibility timeout. Anyone or anything that pushes garbage into
the queue (a misconfigured producer, a hand-written LPUSH) could stop every worker that way.
"""

from __future__ import annotations

import json
import logging

from kombu.transport import redis

log = logging.getLogger(__name__)


class Channel(redis.Channel):
    def _brpop_read(self, **options):
        try:
            return super()._brpop_read(**options)
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            # BRPOP has already taken the item off the queue: drop it and keep consuming.
            log.error("discarded an item from the queue that is not a message: %r", error)
            return True


class Transport(redis.Transport):
    Channel = Channel
