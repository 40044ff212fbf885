"""Batching: many sequences through one model at once.

Words: an *engine* is a model engine (`targets.model`: `HFEngine`, `SimEngine`), which generates
one request per call; a *batch model* steps many sequences of one engine's model in one forward
pass; the *batcher* (scheduler) decides, step by step, which sequences a batch model runs.

Continuous (iteration-level) batching, for `fastapi_batching`:

- `scheduler`: `ContinuousBatcher`, the scheduler thread, and the `BatchModel` protocol it
  needs (it imports no model);
- `llama`: `LlamaBatchModel`, a transformers Llama stepped over a mixed decode/prefill batch, on
  `slot_cache` (`SlotCache`, one KV-cache slot per sequence) and `llama_weights` (fused, prepacked
  linears and rotary tables);
- `sim`: `SimBatchModel`, the `sim:` fake as a batch model;
- `load`: `load_batch_model(engine)`, which picks the batch model for a loaded engine.

Static (request-level) batching, for `fastapi_dynamic_batching`: `static.generate_batch` runs a
fixed batch of requests to completion, one padded forward pass per step.
"""
