# news-monitor in a container: `docker run -v news-monitor-state:/var/lib/news-monitor IMAGE`
# runs the daemon on the bundled config; mount your own at /etc/news-monitor to change it
# (or point $NEWS_MONITOR_CONFIG at it: the HEALTHCHECK reads that, not a --config argument).
# Stop with `docker stop -t 60` (compose: stop_grace_period: 60s) so in-flight fetches (20 s
# deadline) and sends can finish; the default 10 s may cut them off.
# The base is an ARG so a build without registry access can substitute a local image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/news-monitor
ENV PATH=/opt/news-monitor/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY monitor ./monitor
# ca_bundle: an optional build secret for networks that re-sign TLS; in no layer.
# pip and setuptools are not needed at run time (and trip vulnerability scanners): removed.
# The bytecode pip compiled is kept: without it every start, and every HEALTHCHECK, compiles
# all imported modules again (status took 3.5 s instead of 1.4 s).
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    pip install '.[postgres]' \
 && pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="news-monitor" \
      org.opencontainers.image.description="Watch news feeds, match watch rules, alert through Apprise"
RUN groupadd --gid 10001 monitor \
 && useradd --uid 10001 --gid monitor --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin monitor \
 && mkdir -p /var/lib/news-monitor /etc/news-monitor \
 && chown monitor:monitor /var/lib/news-monitor
COPY --from=build /opt/news-monitor /opt/news-monitor
# Only the YAML files: a secret kept beside them for ${file:...} must not end up in a layer.
COPY config/*.yaml /etc/news-monitor/
# MALLOC_ARENA_MAX=2: glibc gives every allocating thread an arena that keeps its memory;
# two cap the long-running daemon's RSS (poll threads, parser pipes) at no cost in speed.
ENV PATH=/opt/news-monitor/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    NEWS_MONITOR_CONFIG=/etc/news-monitor/monitor.yaml \
    STATE_DIRECTORY=/var/lib/news-monitor
VOLUME ["/var/lib/news-monitor"]
USER 10001:10001
# Healthy while the daemon's heartbeat in the database is fresh (it beats every 10 s) and the
# database answers: `news-monitor health` exits 0 or 1, never 2 (which Docker reserves). An
# invalid edit of the rules leaves it healthy: the daemon keeps running the previous ones.
# Several containers on one PostgreSQL (the driver is in the image): give each its own
# $NEWS_MONITOR_INSTANCE, so that each HEALTHCHECK checks its own daemon rather than any, and
# the database URL as a secret: `database: ${file:/run/secrets/database_url}` in monitor.yaml
# with `docker run --secret database_url` (compose: `secrets:`), or `${DATABASE_URL}` from
# the environment. Each container's HEALTHCHECK then also fails while its lease is lost.
HEALTHCHECK --interval=60s --timeout=10s --retries=3 CMD ["news-monitor", "health"]
ENTRYPOINT ["news-monitor"]
CMD ["run"]
