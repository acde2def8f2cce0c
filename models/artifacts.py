"""Versioned model artifacts: save, load the current one, promote only if not worse.

Layout under ``model_dir``::

    model_dir/
      CURRENT                      # name of the version in use (one line)
      v2026-01-10-01/
        model.joblib               # the fitted bundle (selector, series keys, code maps, ...)
        metadata.json              # training window, features, candidates, backtest scores

Version names come from the training run's *business date* (never the wall clock) plus a
sequence number, so reruns never overwrite an earlier version. :func:`promote` makes a version
current only when its backtest score (``metadata["backtest"]["score"]``, lower is better) is not
worse than the current version's (within ``tolerance``); the first version is always promoted.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

CURRENT = "CURRENT"


def new_version_dir(model_dir: str | Path, run_date: date) -> Path:
    """A fresh version folder ``v<run_date>-NN`` (NN = next free sequence number), created."""
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    stem = f"v{run_date.isoformat()}-"
    taken = [int(p.name[len(stem) :]) for p in root.glob(f"{stem}*") if p.name[len(stem) :].isdigit()]
    path = root / f"{stem}{max(taken, default=0) + 1:02d}"
    path.mkdir()
    return path


def save(model_dir: str | Path, run_date: date, model: Any, metadata: dict[str, Any]) -> Path:
    """Write a new version (the fitted model + metadata); does not make it current. Returns its folder."""
    import joblib

    path = new_version_dir(model_dir, run_date)
    joblib.dump(model, path / "model.joblib", compress=3)
    meta = {**metadata, "version": path.name}
    (path / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str), encoding="utf-8")
    return path


def current_version(model_dir: str | Path) -> str | None:
    marker = Path(model_dir) / CURRENT
    if not marker.exists():
        return None
    name = marker.read_text(encoding="utf-8").strip()
    return name if name and (Path(model_dir) / name / "model.joblib").exists() else None


def read_metadata(model_dir: str | Path, version: str) -> dict[str, Any]:
    return json.loads((Path(model_dir) / version / "metadata.json").read_text(encoding="utf-8"))


def load_current(model_dir: str | Path) -> tuple[Any, dict[str, Any]] | None:
    """``(model, metadata)`` of the current version, or ``None`` when there is none."""
    import joblib

    version = current_version(model_dir)
    if version is None:
        return None
    return joblib.load(Path(model_dir) / version / "model.joblib"), read_metadata(model_dir, version)


def load_version(model_dir: str | Path, version: str) -> Any:
    """The fitted model of ``version`` (raises FileNotFoundError naming it when it is gone)."""
    import joblib

    path = Path(model_dir) / version / "model.joblib"
    if not path.exists():
        raise FileNotFoundError(f"model version {version} is missing ({path}): the night's shards plan names it")
    return joblib.load(path)


def make_current(model_dir: str | Path, version: str) -> None:
    """Make ``version`` the current one (atomically: a temporary marker renamed over ``CURRENT``)."""
    root = Path(model_dir)
    tmp = root / f".{CURRENT}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    tmp.replace(root / CURRENT)


def _score(metadata: dict[str, Any]) -> float | None:
    score = (metadata.get("backtest") or {}).get("score")
    return None if score is None else float(score)


def promote(model_dir: str | Path, version: str, tolerance: float = 0.0) -> tuple[bool, str]:
    """Make ``version`` current if its backtest score is not worse than the current one's.

    A version without a score (its backtest window held no sale: nothing to score) never replaces a
    current one; it becomes current only when there is none, and any scored version replaces it
    later. Returns ``(promoted, reason)``; the reason names both scores.
    """
    root = Path(model_dir)
    new_score = _score(read_metadata(root, version))
    cur = current_version(root)
    if cur is not None and cur != version:
        old_score = _score(read_metadata(root, cur))
        if new_score is None:
            return False, f"kept {cur}: {version} has no backtest score (no sale in its backtest window to score it)"
        if old_score is None:
            reason = f"{version} (backtest score {new_score:.4f}) replaces {cur}, which had no backtest score"
        elif new_score > old_score * (1.0 + tolerance):
            return False, f"kept {cur}: backtest score {new_score:.4f} of {version} is worse than {old_score:.4f}"
        else:
            reason = f"{version} replaces {cur}: backtest score {new_score:.4f} <= {old_score:.4f}"
    elif new_score is None:
        reason = f"{version} is the first model, with no backtest score (no sale in its backtest window)"
    else:
        reason = f"{version} is the first model (backtest score {new_score:.4f})"
    make_current(root, version)
    return True, reason


__all__ = ["current_version", "load_current", "make_current", "new_version_dir", "promote", "read_metadata", "save"]
