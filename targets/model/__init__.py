"""The model layer every target shares: spec → materialized folder → loaded engine → tokens.

One module per concept:

- `spec`: the model spec grammar (`tiny`, a Hugging Face folder, `sim:ttft_ms=..`) and presets;
- `store`: materializing a spec into a model folder once (process-safe), its content hash, and
  loading its tokenizer;
- `engine`: what a target needs from a model (`ModelEngine`, `Tokenizer`, `GenParams`);
- `hf`: `HFEngine`, a transformers causal LM with a KV cache; `sim`: `SimEngine`, a calibrated fake;
- `load`: `load_engine(spec)`, the one entry point that picks between them (its own module
  because it imports both engines, which import `engine`);
- `tuning`: process settings every target applies (torch threads, glibc's malloc).

An engine generates one request per call; batching many sequences through one model is
`targets.batching`.
"""
