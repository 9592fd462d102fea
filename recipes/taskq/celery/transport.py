"""kombu's Redis transport, except that one unreadable item in a queue does not stop the worker,
and each message carries the time it was sent.

kombu parses each item it pops from a queue list as a JSON message, and a parse error escapes
to Celery's event loop as an "Unrecoverable error": the whole worker exits, and the jobs it was
running come back only after the visibility timeout. Anyone or anything that pushes garbage into
the queue (a misconfigured producer, a hand-written LPUSH) could stop every worker that way.

Celery's messages (protocol 2) carry no time of sending, so the age of the oldest waiting job, the
earliest sign that workers cannot keep up, could not be read from the queue. The time is added as
a header (`taskq_enqueued_at`, epoch seconds) when the message is put on its list: a retry is a
new message, with the time it was sent again.
"""

from __future__ import annotations

import json
import logging
import time

from kombu.transport import redis

log = logging.getLogger(__name__)


ENQUEUED_AT_HEADER = "taskq_enqueued_at"


class Channel(redis.Channel):
    def _put(self, queue, message, **kwargs):
        headers = message.get("headers")
        if isinstance(headers, dict):
            headers[ENQUEUED_AT_HEADER] = time.time()
        return super()._put(queue, message, **kwargs)

    def _brpop_read(self, **options):
        try:
            return super()._brpop_read(**options)
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            # BRPOP has already taken the item off the queue: drop it and keep consuming.
            log.error("discarded an item from the queue that is not a message: %r", error)
            return True


class Transport(redis.Transport):
    Channel = Channel
