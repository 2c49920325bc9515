# One image for the API and the workers. The GPU worker builds with a CUDA torch index.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/ ./
RUN if [ -f package.json ]; then npm ci --no-audit --no-fund && npm run build; else mkdir -p dist; fi

FROM python:3.11-slim-bookworm
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# torchvision from the same index as torch, built for it (SmolVLM2's and the Qwen video processors
# need it; a PyPI torchvision would pull a different torch / CUDA build)
ARG TORCHVISION_VERSION=0.28.0
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 torchvision==${TORCHVISION_VERSION} --index-url ${TORCH_INDEX_URL}
COPY pyproject.toml alembic.ini ./
COPY backend/ backend/
COPY worker/ worker/
COPY migrations/ migrations/
RUN pip install --no-cache-dir .
COPY --from=frontend /src/frontend/dist frontend/dist
ENV STUDIO_DATA_DIR=/data
EXPOSE 8000
