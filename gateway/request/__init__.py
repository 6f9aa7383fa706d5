"""The request path of a generation, embeddings or count-tokens call, as one flow.

Read `pipeline.run` first: it orders the stages. Then, in the order a request meets them:
- `auth`, `forwarded_headers`, `body`, `model_names`: what is checked before anything is
  sent (the key, the headers that may go upstream, the body's size and time, the model name);
- `call.Call`: the request as checked, immutable from there on;
- `plan.plan(call, target)`: the upstream operation and body for one target, pure; with
  `translation` (chat, Messages, Gemini, Responses between each other), embeddings'
  (gateway.translate.embeddings) and `count_tokens` plans as its variants;
- `relay.relay`: opens the first target that answers (gateway.upstream.dispatch) and gives
  the client its answer: a whole body, or a stream passed through (`passthrough`) or
  translated, as SSE or a JSON array (`json_array_stream`);
- `settlement.Settlement`: the usage counted against the limits exactly once, with
  `usage_estimates` for answers that report none;
- `exchange.Exchange`: the request's record, for events, logs and metrics.
"""
