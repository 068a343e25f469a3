"""Fault primitives and one module per incident."""
