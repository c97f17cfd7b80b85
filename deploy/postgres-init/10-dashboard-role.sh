#!/bin/sh
# Runs once, when the compose PostgreSQL volume is first initialised: the login Grafana's
# PostgreSQL datasource uses. agentwatch's migration 0002 grants it SELECT on the
# `incidents_dashboard` view (redacted identifiers) and on nothing else.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$AGENTWATCH_DASHBOARD_DB_PASSWORD" <<'SQL'
CREATE ROLE agentwatch_dashboard LOGIN PASSWORD :'password';
SQL
