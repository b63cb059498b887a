# STAND-IN for postgres:16-bookworm, built by scripts/compose-smoke.sh only where no container
# registry can be reached. Not an official image: Debian bookworm (debootstrap, minbase) with
# Debian's own PostgreSQL, which in bookworm is 15, not 16 (rostergate needs 13 or later: pg-boss 10).
# postgres-standin-entrypoint.sh honours the part of the official image's contract compose.yaml uses:
# POSTGRES_USER, POSTGRES_DB and POSTGRES_PASSWORD on first start, data in /var/lib/postgresql/data,
# password (scram-sha-256) logins over the network, pg_isready for the health check.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# Debian's package would create a cluster of its own in /var/lib/postgresql/15/main: not wanted,
# the entrypoint makes one in the volume (as the official image does).
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/run/postgresql /var/lib/postgresql/data \
 && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql \
 && chmod 2777 /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY postgres-standin-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
# As the official image: SIGINT is PostgreSQL's "fast" shutdown.
STOPSIGNAL SIGINT
LABEL org.rostergate.standin="postgres:16-bookworm (not the official image: Debian PostgreSQL 15; scripts/compose-smoke.sh)"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
