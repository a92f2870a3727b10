"""A store beside the messages in the deployment's Redis: its keys under the
deployment's prefix, through the backends' client.

Sign-in accounts and moderation keep their keys in the Redis that carries
the chat (see :mod:`chatzilla.backends.redis`); both run commands one at a
time (:meth:`RedisSide._call`) or a few in one MULTI/EXEC (:meth:`RedisSide._exec`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backends.base import StorageError


class RedisSide:
    """The Redis at ``url``, keys under ``prefix``; a Redis error (or a lost
    connection) becomes a :class:`StorageError` that starts with ``name``."""

    def __init__(self, url: str, prefix: str, name: str) -> None:
        # The backends' client: a command not answered in 2 s fails, and a
        # pooled connection Redis closed (it restarted) is replaced before use.
        from .backends.redis import client

        self._redis = client(url)
        self._prefix = prefix
        self._name = name

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The client's command ``name`` with these arguments."""
        import redis

        try:
            return await getattr(self._redis, name)(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise StorageError(f"{self._name}: {exc}") from None

    async def _exec(self, build: Callable[[Any], None]) -> list:
        """The commands ``build(pipe)`` queues, in one MULTI/EXEC; their replies."""
        import redis

        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                build(pipe)
                return await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise StorageError(f"{self._name}: {exc}") from None
