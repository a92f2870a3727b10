"""Where messages and presence are kept, behind one contract.

:mod:`.base` holds the :class:`~chatzilla.backends.base.Backend` contract the
hub relies on and what every backend shares; the backends are the in-process
:class:`~chatzilla.backends.memory.MemoryBackend`, the durable
:class:`~chatzilla.backends.sqlite.SQLiteBackend` and the
:class:`~chatzilla.backends.redis.RedisBackend` shared by many processes.
The two embedded ones count presence in this process
(:class:`~chatzilla.backends.presence.LocalPresence`).
"""
