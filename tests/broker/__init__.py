"""Tests of the broker configuration itself (deploy/mosquitto/) on the real Mosquitto, and of the MQTT client
settings every gaitsym client shares."""
