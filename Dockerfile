# The research backend (backend_proxy) with CPU-only torch, for docker-compose.yml.
# Build: docker compose build   (or: docker build -t training-host-stack/backend:local .)
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# CPU torch first, alone, from PyTorch's CPU index: the default index would pull the CUDA
# build (gigabytes), and the container never sees a GPU anyway. Its own layer, so code
# changes do not re-download it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# constraints.txt pins torch==2.13.0, so installing the project cannot replace it.
COPY pyproject.toml README.md constraints.txt ./
COPY training-engine/ training-engine/
COPY training-sessions/ training-sessions/
COPY training-host-service/ training-host-service/
COPY backend-proxy/ backend-proxy/
COPY config/ config/
RUN PIP_CONSTRAINT=/app/constraints.txt pip install .

# Not root. UID 1000 is the usual first user on Linux, so files written to the ./models and
# ./data bind mounts belong to that user on the host.
RUN useradd --create-home --uid 1000 backend \
    && mkdir -p /app/models /app/data /app/checkpoints \
    && chown -R backend:backend /app
USER backend

EXPOSE 8000
CMD ["backend-proxy", "serve", "--host", "0.0.0.0"]
