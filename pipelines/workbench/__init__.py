"""The planner web workbench (``tiaobo serve``): server-rendered pages on the reporting database.

- :mod:`pipelines.workbench.service` — the decision rules (plain Python, no HTTP);
- :mod:`pipelines.workbench.users` — accounts, argon2 passwords;
- :mod:`pipelines.workbench.auth` — sessions, CSRF tokens, login throttling, the proxy header;
- :mod:`pipelines.workbench.queries` — what the pages read (SQLAlchemy Core, bound parameters);
- :mod:`pipelines.workbench.charts` — server-rendered SVG charts;
- :mod:`pipelines.workbench.app` — the FastAPI app factory :func:`create_app`.

See ``docs/workbench.md``.
"""
