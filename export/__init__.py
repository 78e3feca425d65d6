"""Researchers' export: raw streams and results as CSV, Parquet and Motion-BIDS, streamed."""
