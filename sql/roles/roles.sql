-- Roles of the reporting database (PostgreSQL), applied by `tiaobo roles` (pipelines.reporting.create_roles).
-- {planner}, {loader}, {database} and {schema} are replaced by quoted identifiers. Run as a superuser
-- or a role with CREATEROLE that owns the schema. Idempotent: every statement can run again.
--
-- The loader runs the migrations and the nightly publish: it owns the reporting tables and views.
-- The planner role (planners, BI tools) can read every table and view, now and in the future, and
-- nothing else: no insert, update, delete, truncate, no DDL; its sessions are read-only by default.

grant connect on database {database} to {planner}, {loader};
grant usage on schema {schema} to {planner};
grant usage, create on schema {schema} to {loader};
revoke create on schema {schema} from {planner};

grant select, insert, update, delete, truncate on all tables in schema {schema} to {loader};
grant select on all tables in schema {schema} to {planner};
revoke insert, update, delete, truncate, references, trigger on all tables in schema {schema} from {planner};
-- ... except the workbench's accounts and sessions (password hashes, session ids): not even readable
revoke all on {schema}.workbench_users, {schema}.workbench_sessions, {schema}.workbench_login_attempts from {planner};

-- tables and views the loader creates later (new migrations, re-created views) are readable too
alter default privileges for role {loader} in schema {schema} grant select on tables to {planner};

alter role {planner} in database {database} set default_transaction_read_only = on;
