# syntax=docker/dockerfile:1
# callguard's image: one image for every process in the Procfile. The default command is `web`;
# compose.yaml runs the others (release, worker, dialler) with their Procfile commands:
#   docker run IMAGE                                  web (gunicorn on $PORT, 8000 by default)
#   docker run IMAGE callguard db upgrade             release
#   docker run IMAGE callguard worker --with-scheduler    worker
#   docker run IMAGE callguard worker --urgent-only       dialler

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/callguard
WORKDIR /src
COPY pyproject.toml README.md ./
COPY telephony ./telephony
COPY restrictions ./restrictions
COPY handlers ./handlers
COPY prompts ./prompts
COPY migrations ./migrations
# callguard and its runtime dependencies only (no dev extras). The Alembic scripts are not part of
# the package: `callguard db upgrade` looks for them beside the installed packages
# (telephony/cli.py's MIGRATIONS), so they are copied there; instance/ (made by create_app) is
# made there too, for the app's user to own.
RUN /opt/callguard/bin/pip install --upgrade pip \
    && /opt/callguard/bin/pip install . \
    && site="$(/opt/callguard/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && cp -r migrations "$site/migrations" \
    && mkdir -p "$site/instance"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/callguard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/callguard-metrics
RUN groupadd --system --gid 10001 callguard \
    && useradd --system --uid 10001 --gid callguard --home-dir /home/callguard --create-home \
       --shell /usr/sbin/nologin callguard
COPY --from=build /opt/callguard /opt/callguard
# The app's user owns only what it writes: instance/ (nothing is written there once DATABASE_URL
# and SECRET_KEY are set) and the Prometheus multiprocess directory (compose.yaml mounts an empty
# tmpfs over it, so no process's old files outlive a restart).
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" \
    && chown callguard:callguard "$site/instance" "$PROMETHEUS_MULTIPROC_DIR"
USER callguard:callguard
WORKDIR /home/callguard
EXPOSE 8000
# /healthz: alive (the process answers; nothing else is checked). /readyz says whether it can take
# calls (PostgreSQL, Redis, settings, backlogs): point the load balancer's readiness check there.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# The Procfile's web process (sh for $PORT; exec so gunicorn gets the signals).
CMD ["sh", "-c", "exec gunicorn -c python:telephony.gunicorn_config --bind 0.0.0.0:$PORT --worker-class gthread --workers 2 --threads 8 --timeout 30 --keep-alive 5 \"telephony:create_app()\""]
