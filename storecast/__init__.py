"""storecast: the store-and-forecast service for energy sites (docs/architecture.md, "Layout").

This package holds the binary's entry point, the Python client and what gateway
and services share; `storecast.v1` is the gRPC code generated from `proto/`.
"""
