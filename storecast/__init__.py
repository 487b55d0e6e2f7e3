"""storecast: the store-and-forecast service for energy sites (README, "Layout").

This package root holds the binary's entry point and what gateway and
services share; `storecast.v1`, `storecast.gateway` and `storecast.services`
are mapped in from `proto/storecast/v1/`, `gateway/` and `services/`.
"""
