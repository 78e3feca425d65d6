"""What the gateway and the analytics side share, below both: the uplink contract (`uplink`: topics, envelope,
vocabulary, vectors), the one MQTT client module (`mqtt.client`, paho) and the local Mosquitto (`mqtt.local_broker`),
owner-only files (`private_files`) and secrets out of logs (`redaction`). Imports only `firmware_protocol` and
third-party libraries: never `sensor_gateway` or `analytics`.
"""
