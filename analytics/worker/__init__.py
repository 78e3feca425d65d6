"""The analytics worker (issue 6): MQTT uplink in, raw data and results in the store, acks to the gateway.

- `link`: the worker's MQTT interface (`WorkerLink`) and its paho-mqtt implementation (persistent session,
  QoS 1, manual PUBACK, shared subscriptions ``$share/gaitsym-workers/...``);
- `decode`: uplink envelopes and sensor packets -> `analytics.stores.model.RawSamples`;
- `segments`: closing markers -> segments read back from the store -> analysis -> result points;
- `worker`: the consumer loop (store, acknowledge, analyse, retry or quarantine);
- `reanalyze`: recompute a subject's stored sessions from stored raw data (`gaitsym reanalyze`);
- `errors`: `WorkerError` and the pure retry-vs-drop rule `sort_failure`;
- `cli`: `gaitsym worker`, `gaitsym reanalyze` (light: imports the work only when it runs).

Any number of workers may run: no result depends on what one worker holds in memory (see `segments`).
"""
