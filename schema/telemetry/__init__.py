"""Telemetry: what an operator sees of each operation (logs, metrics, traces)."""
