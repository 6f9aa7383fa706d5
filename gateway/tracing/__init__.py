"""OpenTelemetry traces of governed requests (README: Tracing).

The request path imports only `spans` (the OpenTelemetry API); `setup` loads the SDK and the
exporter, when a serving process turns tracing on.
"""
