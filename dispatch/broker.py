"""The Redis broker transport: kombu's, with the defect that made a worker node exit when the
broker went away while it held an unacknowledged message (issue 9, item 2).

What happens in kombu 5.7 / celery 5.7 when the Redis connection drops: the consumer's
``on_connection_error_after_connected`` calls ``Connection.collect()``; its close of the default
channel is cut short by the Redis ``ConnectionError`` (the channel stays open), and it then
clears the transport's client (``transport.client = None``). The consumer next calls
``connection.close()``: the channel, still open, closes again, drops its Redis pools and
restores its unacknowledged messages (``Restoring 1 unacknowledged message(s)``) through a new
pool built by ``_connparams()`` — which reads ``self.connection.client.hostname`` of the
cleared client. The ``AttributeError`` is not a connection error, nothing catches it, and the
node exits (``Unrecoverable error``). A node holds an unacknowledged message whenever it runs
an ``acks_late`` task (a crawl, a batch of pushes), has one prefetched, or waits on a countdown.

Here a channel whose client was cleared raises Redis' ``ConnectionError`` instead: kombu and
celery treat it as the connection loss it is, the node reconnects, and the messages it held
stay in Redis' unacked set, redelivered after the visibility timeout (the notifier does not
wait for that: its sweep re-enqueues from PostgreSQL). Used for ``redis://`` brokers
(:func:`dispatch.celery_app.celery_config`).
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError(
                "the broker connection was closed; unacknowledged messages stay in Redis"
            )
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


#: the broker_transport setting that selects it
TRANSPORT = "dispatch.broker:Transport"
