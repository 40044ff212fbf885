"""The server every local target runs around its pattern, written once (the patterns are the
modules beside this package).

In the order a request meets it:

- `config`: how a target is started (`ServeConfig`) and its options, parsed in one place;
- `asgi`, `wsgi`: the FastAPI/uvicorn and Flask/gunicorn adapters (routes, error rendering,
  `/health`, `/metrics`, the server's own drain on SIGTERM);
- `exchange`: one HTTP exchange as the flow sees it (`Call` in; `Reply` or `Events` out);
- `flow`: the request flow (auth → serving check → body → admission → outcome), which takes a
  per-request strategy: run a model job or forward upstream;
- `api`: the OpenAI-compatible wire format (request schemas, validation, errors, SSE framing);
  `openapi`: its `/openapi.json`;
- `admission`: backpressure (slots, a bounded FIFO queue, 503 with `Retry-After`);
- `drain`: the graceful drain in the API's shape (503 + `Retry-After` once SIGTERM arrived);
- `job`: one model request's job, and the strategy that runs it (complete or stream);
- `channel`: tokens produced on a worker thread, consumed by the event loop;
- `stats`: the Prometheus counters and gauges served at `/metrics`.
"""
