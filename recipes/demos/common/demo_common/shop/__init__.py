"""The Django demos' shop (Celery's and Dramatiq's): its models and the stack contract's HTTP API
as views. Each demo supplies its tasks and how a job is enqueued (settings.SHOP_ENQUEUE)."""


class BrokerUnavailableError(Exception):
    """A demo's enqueue could not reach the broker: nothing was enqueued."""
