"""The control plane's REST API (FastAPI): ``create_app(settings)`` and one router per resource."""
