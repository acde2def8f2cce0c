"""Calendar features: Chinese public holidays and shopping festivals, and the M5 calendar.

:func:`china_calendar` gives, for every date of a range, numeric features a demand model can use:

- ``holiday``: a statutory public holiday day (New Year's Day; Spring Festival, the eve and the
  first days of the lunar year; Qingming; Labour Day 1-5 May; Dragon Boat; Mid-Autumn; National
  Day Golden Week 1-7 October). Lunar dates are tabulated below for 2015-2035 (Spring Festival,
  Dragon Boat and Mid-Autumn), Qingming is taken as 4-5 April.
- ``festival``: an online shopping festival day (618: 1-18 June, peak on the 18th; Double 11:
  1-11 November, peak on the 11th; Double 12).
- ``days_to_spring_festival`` (signed, clipped to +-30): the pre-festival build-up and the
  post-festival slump around the lunar new year dominate Chinese retail demand.
- ``days_to_event`` (days to the next holiday or festival peak, clipped at 30).

:func:`m5_calendar` reads the M5 ``calendar.csv`` into the same shape: ``event`` (any event),
one column per event type, and the SNAP days of the three states.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Lunar new year's day (Spring Festival), Dragon Boat (5th of 5th month), Mid-Autumn (15th of 8th).
SPRING_FESTIVAL = {
    2015: "2015-02-19", 2016: "2016-02-08", 2017: "2017-01-28", 2018: "2018-02-16", 2019: "2019-02-05",
    2020: "2020-01-25", 2021: "2021-02-12", 2022: "2022-02-01", 2023: "2023-01-22", 2024: "2024-02-10",
    2025: "2025-01-29", 2026: "2026-02-17", 2027: "2027-02-06", 2028: "2028-01-26", 2029: "2029-02-13",
    2030: "2030-02-03", 2031: "2031-01-23", 2032: "2032-02-11", 2033: "2033-01-31", 2034: "2034-02-19",
    2035: "2035-02-08",
}  # fmt: skip
DRAGON_BOAT = {
    2015: "2015-06-20", 2016: "2016-06-09", 2017: "2017-05-30", 2018: "2018-06-18", 2019: "2019-06-07",
    2020: "2020-06-25", 2021: "2021-06-14", 2022: "2022-06-03", 2023: "2023-06-22", 2024: "2024-06-10",
    2025: "2025-05-31", 2026: "2026-06-19", 2027: "2027-06-09", 2028: "2028-05-28", 2029: "2029-06-16",
    2030: "2030-06-05", 2031: "2031-06-24", 2032: "2032-06-12", 2033: "2033-06-01", 2034: "2034-06-20",
    2035: "2035-06-10",
}  # fmt: skip
MID_AUTUMN = {
    2015: "2015-09-27", 2016: "2016-09-15", 2017: "2017-10-04", 2018: "2018-09-24", 2019: "2019-09-13",
    2020: "2020-10-01", 2021: "2021-09-21", 2022: "2022-09-10", 2023: "2023-09-29", 2024: "2024-09-17",
    2025: "2025-10-06", 2026: "2026-09-25", 2027: "2027-09-15", 2028: "2028-10-03", 2029: "2029-09-22",
    2030: "2030-09-12", 2031: "2031-10-01", 2032: "2032-09-19", 2033: "2033-09-08", 2034: "2034-09-27",
    2035: "2035-09-16",
}  # fmt: skip

CHINA_COLUMNS = ("holiday", "festival", "days_to_spring_festival", "days_to_event", "month", "day_of_month")


def _check_years(dates: pd.DatetimeIndex) -> None:
    years = set(dates.year.tolist())
    missing = sorted(y for y in years if y not in SPRING_FESTIVAL)
    if missing:
        raise ValueError(f"the Chinese calendar is tabulated for 2015-2035 only; dates in {missing} are not covered")


def china_calendar(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Features for every date in ``[start, end]`` (one row per date, index = date)."""
    dates = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    if dates.empty:
        return pd.DataFrame(columns=list(CHINA_COLUMNS), index=dates, dtype=float)
    years = range(dates.year.min() - 1, dates.year.max() + 2)
    _check_years(dates)
    hol: set[pd.Timestamp] = set()
    peaks: list[pd.Timestamp] = []
    for y in years:
        if y not in SPRING_FESTIVAL:
            continue
        sf = pd.Timestamp(SPRING_FESTIVAL[y])
        hol |= set(pd.date_range(sf - pd.Timedelta(days=1), sf + pd.Timedelta(days=6)))
        hol |= {pd.Timestamp(f"{y}-01-01"), pd.Timestamp(f"{y}-04-04"), pd.Timestamp(f"{y}-04-05")}
        hol |= set(pd.date_range(f"{y}-05-01", f"{y}-05-05"))
        hol |= set(pd.date_range(f"{y}-10-01", f"{y}-10-07"))
        hol |= {pd.Timestamp(DRAGON_BOAT[y]), pd.Timestamp(MID_AUTUMN[y])}
        peaks += [sf, pd.Timestamp(f"{y}-06-18"), pd.Timestamp(f"{y}-11-11"), pd.Timestamp(f"{y}-12-12")]
        peaks += [pd.Timestamp(f"{y}-01-01"), pd.Timestamp(f"{y}-05-01"), pd.Timestamp(f"{y}-10-01")]
    fest: set[pd.Timestamp] = set()
    for y in years:
        fest |= set(pd.date_range(f"{y}-06-01", f"{y}-06-18")) | set(pd.date_range(f"{y}-11-01", f"{y}-11-11"))
        fest |= {pd.Timestamp(f"{y}-12-12")}
    d64 = dates.values.astype("datetime64[D]").astype(np.int64)
    sf_days = np.sort(np.array([pd.Timestamp(v).value // 86_400_000_000_000 for v in SPRING_FESTIVAL.values()]))
    nxt = np.searchsorted(sf_days, d64)
    to_next = sf_days[np.clip(nxt, 0, len(sf_days) - 1)] - d64
    to_prev = d64 - sf_days[np.clip(nxt - 1, 0, len(sf_days) - 1)]
    signed = np.where(to_next <= to_prev, to_next, -to_prev)
    peak_days = np.sort(np.array([p.value // 86_400_000_000_000 for p in peaks]))
    nxt_peak = peak_days[np.clip(np.searchsorted(peak_days, d64), 0, len(peak_days) - 1)] - d64
    return pd.DataFrame(
        {
            "holiday": dates.isin(list(hol)).astype(float),
            "festival": dates.isin(list(fest)).astype(float),
            "days_to_spring_festival": np.clip(signed, -30, 30).astype(float),
            "days_to_event": np.clip(nxt_peak, 0, 30).astype(float),
            "month": dates.month.astype(float),
            "day_of_month": dates.day.astype(float),
        },
        index=dates,
    )


def m5_calendar(path: str | Path) -> pd.DataFrame:
    """The M5 ``calendar.csv`` as numeric features per date (index = date): ``event``, one 0/1
    column per event type, ``snap_CA``, ``snap_TX``, ``snap_WI``, ``month``, ``day_of_month``,
    ``days_to_event`` (clipped at 30)."""
    cal = pd.read_csv(path, parse_dates=["date"])
    required = {"date", "event_type_1", "event_type_2", "snap_CA", "snap_TX", "snap_WI"}
    missing = sorted(required - set(cal.columns))
    if missing:
        raise ValueError(f"M5 calendar {path}: missing columns {missing}")
    cal = cal.sort_values("date").set_index("date")
    out = pd.DataFrame(index=cal.index)
    types = sorted(set(cal["event_type_1"].dropna()) | set(cal["event_type_2"].dropna()))
    any_event = cal["event_type_1"].notna() | cal["event_type_2"].notna()
    out["event"] = any_event.astype(float)
    for t in types:
        out[f"event_{t.lower()}"] = ((cal["event_type_1"] == t) | (cal["event_type_2"] == t)).astype(float)
    for s in ("snap_CA", "snap_TX", "snap_WI"):
        out[s] = cal[s].astype(float)
    out["month"] = cal.index.month.astype(float)
    out["day_of_month"] = cal.index.day.astype(float)
    d = np.arange(len(cal))
    ev = np.flatnonzero(any_event.to_numpy())
    nxt = np.searchsorted(ev, d)
    dist = np.where(nxt < len(ev), ev[np.clip(nxt, 0, len(ev) - 1)] - d, 30) if len(ev) else np.full(len(d), 30)
    out["days_to_event"] = np.clip(dist, 0, 30).astype(float)
    return out


__all__ = ["CHINA_COLUMNS", "SPRING_FESTIVAL", "china_calendar", "m5_calendar"]
