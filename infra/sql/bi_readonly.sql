-- A login for BI tools (Metabase, Superset, Excel over ODBC) that reads schema `marts` and
-- nothing else: raw rows hold personal data, and cchc_* are dbt's half-built work.
--
--   BI_PASSWORD=... psql "postgresql://cchc@host:5432/cchc" -v bi_role=cchc_bi \
--       -f infra/sql/bi_readonly.sql
--
-- Run it as the role `cchc run` connects as: default privileges only follow the tables
-- that role creates, and publish re-creates a mart whose columns change. That role needs
-- CREATEROLE (or run it as a superuser with -v owner_role=<that role>).
-- Variables: bi_role (required); bi_password (or the environment variable BI_PASSWORD, so
-- the secret stays out of the process list); owner_role (default: the connected role);
-- bi_statement_timeout (default 5min).
-- Idempotent: run it again to change the password or to put the grants back as they were.

\set ON_ERROR_STOP on

-- A missing variable fails the script (ON_ERROR_STOP: psql exits 3).
\if :{?bi_role}
\else
  DO $$ BEGIN RAISE EXCEPTION 'bi_readonly.sql: pass -v bi_role=NAME'; END $$;
\endif
\if :{?bi_password}
\else
  \getenv bi_password BI_PASSWORD
\endif
\if :{?bi_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'bi_readonly.sql: pass -v bi_password=... or set BI_PASSWORD'; END $$;
\endif
\if :{?owner_role}
\else
  SELECT current_user AS owner_role \gset
\endif
\if :{?bi_statement_timeout}
\else
  \set bi_statement_timeout 5min
\endif

SELECT :'bi_role' <> '' AND :'bi_password' <> '' AS vars_ok \gset
\if :vars_ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'bi_readonly.sql: bi_role and bi_password must not be empty'; END $$;
\endif

-- One transaction: a failure half-way leaves the previous grants as they were.
BEGIN;

-- The DO blocks below read the names from here (psql does not expand variables in them).
SELECT set_config('cchc.bi_role', :'bi_role', true) AS _bi,
       set_config('cchc.owner_role', :'owner_role', true) AS _owner \gset

SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'bi_role') AS bi_role_missing \gset
\if :bi_role_missing
  CREATE ROLE :"bi_role";
\endif

-- Refuse a name that is already a powerful role: privileges below could not contain it.
DO $$
DECLARE r pg_roles;
BEGIN
  SELECT * INTO r FROM pg_roles WHERE rolname = current_setting('cchc.bi_role');
  IF r.rolsuper OR r.rolreplication OR r.rolbypassrls OR r.rolname = current_setting('cchc.owner_role') THEN
    RAISE EXCEPTION 'role % is a superuser, replication, bypassrls or owner role: choose another bi_role', r.rolname;
  END IF;
END $$;

-- NOINHERIT: should someone later grant it another role, it gains nothing implicitly.
ALTER ROLE :"bi_role" WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 20
  PASSWORD :'bi_password';
-- A safety net for tools that open write transactions, not the boundary (privileges are).
ALTER ROLE :"bi_role" SET default_transaction_read_only = on;
-- One runaway dashboard must not hold locks that the nightly publish waits for.
ALTER ROLE :"bi_role" SET statement_timeout = :'bi_statement_timeout';
ALTER ROLE :"bi_role" SET idle_in_transaction_session_timeout = '10min';
ALTER ROLE :"bi_role" SET search_path = marts;

-- Temporary tables are the one thing every role may create by default; BI needs none.
-- (A warning, not an error, when the runner does not own the database.)
REVOKE TEMPORARY ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO :"bi_role";
-- PostgreSQL 14 and older let every role create tables in `public` (15 no longer does).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- So the script can run before the first `cchc run`; owned by the role that publishes.
CREATE SCHEMA IF NOT EXISTS marts AUTHORIZATION :"owner_role";

-- Whatever was granted to the role outside marts before is taken back.
DO $$
DECLARE
  bi text := quote_ident(current_setting('cchc.bi_role'));
  owner text := quote_ident(current_setting('cchc.owner_role'));
  s text;
BEGIN
  FOR s IN
    SELECT quote_ident(nspname) FROM pg_namespace
    WHERE nspname NOT IN ('marts', 'pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\_%'
      AND pg_has_role(current_user, nspowner, 'USAGE')
  LOOP
    EXECUTE format('REVOKE ALL ON SCHEMA %s FROM %s', s, bi);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s', s, bi);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s', s, bi);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s REVOKE ALL ON TABLES FROM %s',
                   owner, s, bi);
  END LOOP;
END $$;

GRANT USAGE ON SCHEMA marts TO :"bi_role";
REVOKE CREATE ON SCHEMA marts FROM :"bi_role";
REVOKE ALL ON ALL TABLES IN SCHEMA marts FROM :"bi_role";
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO :"bi_role";
-- Marts that publish creates later (new ones, or one dropped and re-created because its
-- columns changed) are readable from the moment they exist.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA marts
  REVOKE ALL ON TABLES FROM :"bi_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA marts
  GRANT SELECT ON TABLES TO :"bi_role";

COMMIT;
