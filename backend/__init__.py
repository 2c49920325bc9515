"""VLM Studio web back end (FastAPI). Never imports torch: ML lives in `worker/`."""
