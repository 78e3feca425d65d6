"""Seeded fuzz campaign at every decoder of untrusted input (see poison.py; the long run is bench/fuzz_campaign.py)."""
