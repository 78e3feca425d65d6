"""The analytics worker: MQTT uplink in, raw data and results in the store, acks to the gateway.

- `link`: the worker's MQTT interface (`WorkerLink`) and its paho-mqtt implementation (persistent session,
  QoS 1, manual PUBACK, shared subscriptions ``$share/gaitsym-workers/...``);
- `decode`: uplink envelopes and sensor packets -> `analytics.stores.model.RawSamples`;
- `segments`: closing markers -> segments read back from the store -> analysis -> result points;
- `live_windows`: window markers -> each session's live analysis (`analytics.pipeline.live`), fed only what is
  new -> provisional strides; `live_session`: one session's live state (its feeds onto the grid, its estimates'
  instants);
- `worker`: the consumer loop (admit within budgets, carry, quarantine, acknowledge, retry); with it
  `raw_ingest` (raw batches and gaps into the store, the cache of what this worker stored), `segment_jobs`
  (a closing marker from arrival through analysis to acknowledgement), `malformed` (malformed deliveries set
  aside once) and `acks` (end-to-end acks to the gateways); `config`: `WorkerConfig`, `WorkerStats`;
- `reanalyze`: recompute a subject's stored sessions from stored raw data (`gaitsym reanalyze`);
- `errors`: `WorkerError` and the pure retry-vs-drop rule `sort_failure`;
- `cli`: `gaitsym worker`, `gaitsym reanalyze` (light: imports the work only when it runs).

Any number of workers may run: no final result depends on what one worker holds in memory (see `segments`);
which worker gives out a provisional stride does, never its contacts (`live_windows`).
"""
