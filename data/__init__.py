"""Ingestion: sources, video I/O, Ray Data steps, shard writer, scheduled ingestion, synth."""
