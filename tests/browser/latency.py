"""A slow network between a browser and the server: a TCP proxy on loopback
that holds every chunk it carries ``delay`` seconds, each way.

Open the page through ``DelayingProxy(server.port).url`` and everything the
page does (the page itself, the scripts, SockJS over any transport) takes
a round trip of twice the delay, as on a phone network. Chunks keep their
order and are not slowed down by each other: each one is due ``delay``
after it arrived. The proxy runs its own event loop in a thread, so it
works beside Playwright's sync API.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

#: A phone network's latency, each way.
PHONE_DELAY = 0.150


class DelayingProxy:
    """Forwards 127.0.0.1:``port`` (a free port) to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int, delay: float = PHONE_DELAY) -> None:
        self.delay = delay
        self._target = target_port
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delaying-proxy", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, client_reader, client_writer) -> None:
        # Cancelled only when the proxy closes: that ends the connection quietly.
        with contextlib.suppress(asyncio.CancelledError):
            await self._connect(client_reader, client_writer)

    async def _connect(self, client_reader, client_writer) -> None:
        self._writers.add(client_writer)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            client_writer.close()
            self._writers.discard(client_writer)
            return
        self._writers.add(server_writer)
        await asyncio.gather(
            self._carry(client_reader, server_writer), self._carry(server_reader, client_writer)
        )
        for writer in (client_writer, server_writer):
            writer.close()
            self._writers.discard(writer)

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copies ``reader`` to ``writer``, each chunk ``delay`` late; passes the end on too."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    if data is None:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, RuntimeError):
                    return  # the other side is gone: what is left goes nowhere

        delivering = asyncio.ensure_future(deliver())
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
        queue.put_nowait((loop.time() + self.delay, None))
        await delivering

    def close(self) -> None:
        """Stops listening, drops every connection and the thread."""

        async def stop() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
