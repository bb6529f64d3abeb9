"""The thin Celery layer that runs crawls and notifications in production."""
