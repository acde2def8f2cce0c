#!/bin/bash
# Creates Tiaobo's reporting database and the loader role (run once by the postgres image).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
create role tiaobo_loader login password '${TIAOBO_LOADER_PASSWORD}';
create database tiaobo owner tiaobo_loader encoding 'UTF8';
SQL
