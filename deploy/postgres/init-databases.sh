#!/bin/sh
# Creates the roles and databases of the compose stack. The postgres image runs this once, as its superuser,
# when it initialises an empty data volume (files in /docker-entrypoint-initdb.d); it never runs again on an
# existing volume, so changing a password here later needs `docker compose down -v` (which deletes all data).
#
#   concert              the booking service's database, owned by role concert (the service applies its own
#                        migrations: `concert migrate`)
#   temporal             the Temporal server's persistence, owned by role temporal
#   temporal_visibility  the Temporal server's visibility store (workflow lists and search attributes), owned by
#                        role temporal, with the btree_gin extension its schema needs
#
# Neither application role is a superuser or may create databases. The Temporal schemas themselves are created
# and upgraded by the temporal-schema service (deploy/temporal/schema.sh).
#
# The image executes this file when it is executable and sources it otherwise, so it sets no shell options
# (`set -u` would leak into the image's own entrypoint).

: "${PG_CONCERT_PASSWORD:?set PG_CONCERT_PASSWORD}"
: "${PG_TEMPORAL_PASSWORD:?set PG_TEMPORAL_PASSWORD}"

psql --no-psqlrc --set ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
	--set concert_password="$PG_CONCERT_PASSWORD" --set temporal_password="$PG_TEMPORAL_PASSWORD" <<'SQL'
CREATE ROLE concert LOGIN PASSWORD :'concert_password';
CREATE DATABASE concert OWNER concert;

CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
\connect temporal_visibility
CREATE EXTENSION IF NOT EXISTS btree_gin;
SQL
