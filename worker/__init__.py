"""VLM Studio ML core and Celery worker: the only package that imports torch."""
