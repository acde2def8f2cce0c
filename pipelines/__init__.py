"""Tiaobo: the nightly inventory pipeline as a Python package.

One module per stage (extract, validate, forecast, policy, alerts, transfers, load, notify),
plus the data contract (`contract`), the configuration model (`config`), the run context
(`context`) and the command line (`cli`). Pure functions in the middle, I/O at the edges.
"""

__version__ = "0.1.0"
