"""``damvad serve``: a monitor for cameras with a web page, events in SQLite, and alerts to webhooks and MQTT.

Layers, arrows pointing down: :mod:`~damvad.serve.server` (socket + uvicorn) -> :mod:`~damvad.serve.app`
(page, REST API, access) -> :mod:`~damvad.serve.monitor` (cameras, events, alerts, retention) ->
:mod:`~damvad.serve.camera` (one source through :class:`damvad.detect.Detector`), with
:mod:`~damvad.serve.store` (SQLite), :mod:`~damvad.serve.media` (pictures), :mod:`~damvad.serve.alerts`
(webhook, MQTT), :mod:`~damvad.serve.backend` (one I3D for all cameras) and :mod:`~damvad.serve.sources`
beside them. Scoring is the live path's own: nothing here scores a frame differently from ``damvad detect``.
"""
