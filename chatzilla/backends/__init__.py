"""Where messages and presence are kept, behind one contract.

:mod:`.base` holds the :class:`~chatzilla.backends.base.Backend` contract the
hub relies on and what every backend shares; the backends are the in-process
:class:`~chatzilla.backends.memory.MemoryBackend`, the durable
:class:`~chatzilla.backends.sqlite.SQLiteBackend`, and those shared by many
processes (:class:`~chatzilla.backends.networked.NetworkedBackend`): the
:class:`~chatzilla.backends.redis.RedisBackend`, the
:class:`~chatzilla.backends.postgres.PostgresBackend`, and the two together
(:class:`~chatzilla.backends.postgres_redis.PostgresRedisBackend`: the
messages of :class:`~chatzilla.backends.postgres.PostgresStore`, the
presence of :class:`~chatzilla.backends.redis.RedisPresence`). The two
embedded ones count presence in this process
(:class:`~chatzilla.backends.presence.LocalPresence`).
"""
