"""The replay's case and a planner's proposal (shared by :mod:`pipelines.eval.replay` and
:mod:`pipelines.eval.planner`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass
class Network:
    """A replay case: series keys (sku, location), demand per period before (``history``) and
    after (``future``) the decision date, items, locations, lanes."""

    name: str
    keys: pd.DataFrame
    history: np.ndarray
    future: np.ndarray
    period_days: int
    decision_date: date
    items: pd.DataFrame
    locations: pd.DataFrame
    lanes: pd.DataFrame


@dataclass
class Step:
    """What a planner proposed at one decision epoch."""

    day: int  # days after the decision date
    transfers: pd.DataFrame
    note: str
    mip_gap: float | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
