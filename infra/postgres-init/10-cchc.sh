#!/bin/bash
# First start of the warehouse container (empty volume): one role and one database per
# application, then the read-only BI role. The official postgres image runs this once.
set -euo pipefail

: "${WAREHOUSE_PASSWORD:?}" "${PREFECT_DB_PASSWORD:?}" "${METABASE_DB_PASSWORD:?}"
: "${BI_ROLE:?}" "${BI_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v warehouse_password="$WAREHOUSE_PASSWORD" \
  -v prefect_password="$PREFECT_DB_PASSWORD" \
  -v metabase_password="$METABASE_DB_PASSWORD" <<'SQL'
CREATE ROLE cchc LOGIN PASSWORD :'warehouse_password';
CREATE ROLE prefect LOGIN PASSWORD :'prefect_password';
CREATE ROLE metabase LOGIN PASSWORD :'metabase_password';
CREATE DATABASE cchc OWNER cchc;
CREATE DATABASE prefect OWNER prefect;
CREATE DATABASE metabase OWNER metabase;
-- Every role may connect to every database by default; the BI role must not reach
-- Prefect's or Metabase's tables (stored credentials, flow parameters).
REVOKE CONNECT, TEMPORARY ON DATABASE prefect FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE metabase FROM PUBLIC;
SQL

# As the superuser, for the owner: cchc needs no CREATEROLE. BI_PASSWORD comes from the
# environment, read by the script itself.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname cchc \
  -v bi_role="$BI_ROLE" -v owner_role=cchc -f /cchc/sql/bi_readonly.sql
