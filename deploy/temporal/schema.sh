#!/bin/sh
# Creates the Temporal server's schemas on first start and upgrades them to the admin-tools image's version
# afterwards. The temporal-schema service runs it (temporalio/admin-tools image) before the server starts;
# running it again changes nothing. The databases themselves are created by deploy/postgres/init-databases.sh.
#
# temporal-sql-tool reads its connection from SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD. The
# schemas come from the tool's embedded copy (--schema-name), which always matches the admin-tools image tag:
# keep that tag equal to the server image tag in docker-compose.yml.
set -eu

: "${SQL_PLUGIN:?}" "${SQL_HOST:?}" "${SQL_PORT:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"

# migrate DATABASE SCHEMA_NAME: record version 0.0 if the database has no schema yet, then apply every versioned
# step up to the newest one.
migrate() {
	echo "temporal-schema: $1 <- $2"
	temporal-sql-tool --db "$1" setup-schema -v 0.0
	temporal-sql-tool --db "$1" update-schema --schema-name "$2"
}

migrate "${DBNAME:-temporal}" postgresql/v12/temporal
migrate "${VISIBILITY_DBNAME:-temporal_visibility}" postgresql/v12/visibility
echo "temporal-schema: done"
