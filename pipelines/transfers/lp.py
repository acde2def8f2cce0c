"""A small builder for the MILP: named variable blocks and named constraint blocks, no hand-counted
offsets. Constraints are ``A x <= upper`` rows; :meth:`LinearProgram.solve` hands the whole model
to HiGHS (``scipy.optimize.milp``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp


@dataclass
class LinearProgram:
    """Variables are added in blocks (:meth:`variables` returns the block's first column), constraints
    in blocks of rows (:meth:`constraints`), each block named so a model can be read back by name
    (:attr:`var_blocks`, :attr:`row_blocks`: name -> (first, count))."""

    var_blocks: dict[str, tuple[int, int]] = field(default_factory=dict)
    row_blocks: dict[str, tuple[int, int]] = field(default_factory=dict)
    _cost: list[np.ndarray] = field(default_factory=list)
    _upper: list[np.ndarray] = field(default_factory=list)
    _integer: list[np.ndarray] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    _cols: list[np.ndarray] = field(default_factory=list)
    _vals: list[np.ndarray] = field(default_factory=list)
    _rhs: list[np.ndarray] = field(default_factory=list)
    n_vars: int = 0
    n_rows: int = 0

    def variables(self, name: str, cost: np.ndarray, upper: np.ndarray, integer: bool) -> int:
        """Add ``len(cost)`` variables (lower bound 0) and return the column of the first one."""
        cost = np.asarray(cost, float)
        first = self.n_vars
        self._cost.append(cost)
        self._upper.append(np.asarray(upper, float))
        self._integer.append(np.full(len(cost), 1.0 if integer else 0.0))
        self.var_blocks[name] = (first, len(cost))
        self.n_vars += len(cost)
        return first

    def constraints(self, name: str, upper: np.ndarray, terms: list[tuple[Any, Any, Any]]) -> int:
        """Add ``len(upper)`` rows ``sum of terms <= upper``; each term is (row within the block,
        column, coefficient) arrays. Returns the first row."""
        upper = np.asarray(upper, float)
        first = self.n_rows
        for r, c, v in terms:
            self._rows.append(first + np.asarray(r, np.int64))
            self._cols.append(np.asarray(c, np.int64))
            self._vals.append(np.broadcast_to(np.asarray(v, float), np.shape(r)))
        self._rhs.append(upper)
        self.row_blocks[name] = (first, len(upper))
        self.n_rows += len(upper)
        return first

    def block(self, x: np.ndarray, name: str) -> np.ndarray:
        """The values of variable block ``name`` in a solution ``x``."""
        first, n = self.var_blocks[name]
        return x[first : first + n]

    def solve(self, time_limit: float, mip_rel_gap: float, disp: bool = False) -> Any:
        """Minimise cost x subject to the rows and 0 <= x <= upper (integers where declared)."""
        A = sp.csr_array(
            (np.concatenate(self._vals), (np.concatenate(self._rows), np.concatenate(self._cols))),
            shape=(self.n_rows, self.n_vars),
        )
        return milp(
            np.concatenate(self._cost),
            constraints=LinearConstraint(A, np.full(self.n_rows, -np.inf), np.concatenate(self._rhs)),
            integrality=np.concatenate(self._integer),
            bounds=Bounds(np.zeros(self.n_vars), np.concatenate(self._upper)),
            options={"time_limit": max(float(time_limit), 1.0), "mip_rel_gap": float(mip_rel_gap), "disp": disp},
        )
