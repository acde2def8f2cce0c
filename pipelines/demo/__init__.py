"""The demo ERP: a generated source database for the demo and the tests (not run at night)."""
