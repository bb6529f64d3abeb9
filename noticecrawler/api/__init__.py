"""The app's HTTP API (``noticecrawler api``): devices, subscriptions, posts, pushes, the admin
crawl trigger and the operator page at ``/admin/``. See docs/api.md.

``app.create_app(config)`` builds the FastAPI application; routes live one resource per file in
``routes/``, every SQL statement in ``queries.py``.
"""
