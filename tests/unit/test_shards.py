"""The shard plan: groups packed by size, components never split, deterministic."""

from __future__ import annotations

import pandas as pd

from pipelines.shards import _pack, lane_components, plan_shards


def test_pack_largest_first_onto_the_lightest_shard() -> None:
    w = pd.Series({"a": 5, "b": 4, "c": 3, "d": 3, "e": 1})
    assert _pack(w, 2) == [["a", "d"], ["b", "c", "e"]]  # 5+3 | 4+3+1
    assert _pack(w, 10) == [["a"], ["b"], ["c"], ["d"], ["e"]]  # never an empty shard
    assert _pack(pd.Series(dtype=float), 3) == [[]]


def test_lane_components_and_lane_shards_keep_components_whole() -> None:
    locs = pd.DataFrame({"location": ["D1", "S1", "S2", "D2", "S3", "X"], "region": ["e", "e", "e", "n", "n", "n"]})
    lanes = pd.DataFrame({"from_location": ["D1", "D1", "D2"], "to_location": ["S1", "S2", "S3"]})
    comp = lane_components(locs, lanes)
    assert comp["S1"] == comp["S2"] == comp["D1"] and comp["S3"] == comp["D2"] != comp["D1"]
    assert comp["X"] not in (comp["D1"], comp["D2"])  # no lane: a component of its own
    keys = pd.DataFrame({"sku": ["A", "A", "B", "A", "B"], "location": ["S1", "S2", "S2", "S3", "X"]})
    items = pd.DataFrame({"sku": ["A", "B"], "category": ["c1", "c2"]})
    plan = plan_shards("location", 2, keys, items, locs, lanes)
    lanes_sh = [set(s["values"]) for s in plan["lanes"]]
    assert any({"D1", "S1", "S2"} <= s for s in lanes_sh) and any({"D2", "S3"} <= s for s in lanes_sh)
    assert sorted(v for s in plan["series"] for v in s["values"]) == ["S1", "S2", "S3", "X"]
    assert all(s["axis"] == "sku" for s in plan["items"])  # alerts look at every location of a SKU
    by_region = plan_shards("region", 4, keys, items, locs, lanes)["series"]
    assert sorted(sorted(s["values"]) for s in by_region) == [["S1", "S2"], ["S3", "X"]]
    by_cat = plan_shards("category", 4, keys, items, locs, lanes)
    assert by_cat["series"] == by_cat["items"] and {s["axis"] for s in by_cat["series"]} == {"sku"}
    assert plan == plan_shards("location", 2, keys, items, locs, lanes)  # deterministic
