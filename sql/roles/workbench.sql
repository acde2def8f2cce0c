-- The planner workbench's role (tiaobo serve), applied by `tiaobo roles --workbench-role NAME`
-- (pipelines.reporting.create_roles) after roles.sql. {workbench}, {loader}, {database} and {schema}
-- are replaced by quoted identifiers. Idempotent.
--
-- It reads what the pages show (every table and view, now and in the future), appends decisions to
-- transfer_decisions and purchase_decisions (INSERT only: a decision row is never updated or deleted) and keeps its own
-- accounts, sessions and login attempts. It cannot publish, migrate or change any other table.

grant connect on database {database} to {workbench};
grant usage on schema {schema} to {workbench};
revoke create on schema {schema} from {workbench};

grant select on all tables in schema {schema} to {workbench};
revoke insert, update, delete, truncate, references, trigger on all tables in schema {schema} from {workbench};
grant insert on {schema}.transfer_decisions, {schema}.purchase_decisions to {workbench};
grant insert, update on {schema}.workbench_users, {schema}.workbench_sessions, {schema}.workbench_login_attempts
  to {workbench};

alter default privileges for role {loader} in schema {schema} grant select on tables to {workbench};
