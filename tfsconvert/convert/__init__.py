"""Converters: one module per source, one per target writer; every target is published by layout.publish."""
