"""The recipe with the published truncation (lowrank_ref.training.published_recipe), on
made-up data: one row per tau and epoch, ranks as the published rule caps and floors them."""
import csv

import pytest

from lowrank_ref.training.published_recipe import PUBLISHED_COLUMNS, published_truncation_recipe
from made_up_data import blobs


def test_rows_per_tau_and_epoch(tmp_path):
    path = published_truncation_recipe(
        taus=(0.05, 0.3), epochs=2, results_dir=tmp_path, name="t.csv", data=blobs(),
        options={"sizes": [12, 16, 16, 10], "rank": 6, "batch_size": 16}, log=lambda s: None)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == PUBLISHED_COLUMNS
    assert [(r["tau"], r["epoch"]) for r in rows] == [("0.05", "1"), ("0.05", "2"),
                                                      ("0.3", "1"), ("0.3", "2")]
    for r in rows:
        ranks = [int(x) for x in r["ranks"].split("|")]
        assert len(ranks) == 2 and 2 <= ranks[0] <= 6 and 2 <= ranks[1] <= 8  # 12 // 2, 16 // 2
        assert r["val_acc"] and (r["test_acc"] != "") == (r["epoch"] == "2")
    with pytest.raises(ValueError, match="form"):
        published_truncation_recipe(form="sgd", results_dir=tmp_path)
