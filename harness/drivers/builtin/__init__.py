"""The builtin driver (asyncio + aiohttp), in the order a request flows through it:

- `driver`: `BuiltinDriver`, closed and open loops, connection caps;
- `shares`: the point split over several forked driver processes;
- `streaming`: one request, read as it streams, with phase timeouts, into a `Sample`;
- `event_scan`: the SSE fast path `streaming` reads token chunks with.
"""
