"""The test project's ASGI application plus its static files, as ``runserver`` serves them.

The browser tests run it under uvicorn, so that pages load ``django_scout/live.js`` and
``live.css`` from the app's ``static/`` folder without ``collectstatic``.
"""

from __future__ import annotations

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from tests.asgi import application as project

application = ASGIStaticFilesHandler(project)
