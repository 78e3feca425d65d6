"""Comparing gaitsym's output with a reference (simulator truth, INDIP, optical capture): used by bench/ and tests."""
