"""`ClickMetrics` against values worked out by hand and with numpy, and `worth_clicks` on
hand-made curves; the metric synced over two gloo processes equals one process."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from lit_gradcam.evaluation.click_metrics import ClickMetrics, worth_clicks

NAN = math.nan

#: Curves of max_clicks = 6: column 0 the no-click IoU (NaN: none), then clicks 1..6.
CURVES = torch.tensor(
    [
        [NAN, 0.50, 0.86, 0.88, 0.90, 0.95, 0.97],  # NoC85 2, NoC90 4, no start
        [0.92, 0.80, 0.84, 0.85, 0.91, NAN, NAN],  # stopped at 0.91; NoC85 3 (exactly 0.85)
        [0.60, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80],  # never: both NoC capped at 6
        [0.50, 0.90, NAN, NAN, NAN, NAN, NAN],  # stopped at click 1, its 0.90 kept
    ],
    dtype=torch.float64,
)

EXPECTED = {
    "miou_1": (0.50 + 0.80 + 0.30 + 0.90) / 4,
    "miou_2": (0.86 + 0.84 + 0.40 + 0.90) / 4,
    "miou_3": (0.88 + 0.85 + 0.50 + 0.90) / 4,
    "noc85": (2 + 3 + 6 + 1) / 4,
    "noc90": (4 + 4 + 6 + 1) / 4,
    "noc90_from_start": (0 + 6 + 1) / 3,  # the first curve has no start; 0.92 at the start: 0
}


def test_hand_made_curves_in_two_updates() -> None:
    metric = ClickMetrics(max_clicks=6, miou_clicks=3)
    metric.update(CURVES[:1])
    metric.update(CURVES[1:])
    values = metric.compute()
    assert values.keys() == EXPECTED.keys()
    for key, value in EXPECTED.items():
        assert values[key] == pytest.approx(value, rel=1e-12), key
        assert isinstance(values[key], float)


def _numpy_scores(curves: np.ndarray, miou_clicks: int) -> dict[str, float]:
    """The scores of full curves (no NaN after column 0) computed column by column."""
    clicks = curves.shape[1] - 1
    scores = {f"miou_{k}": curves[:, k].mean() for k in range(1, miou_clicks + 1)}
    for threshold in (0.85, 0.90):
        per_curve = []
        for curve in curves:
            reached = [k for k in range(1, clicks + 1) if curve[k] >= threshold]
            per_curve.append(reached[0] if reached else clicks)
        scores[f"noc{round(threshold * 100)}"] = float(np.mean(per_curve))
        if threshold == 0.90:
            from_start = np.where(curves[:, 0] >= 0.90, 0, per_curve)
            scores["noc90_from_start"] = float(from_start.mean())
    return scores


def test_random_twenty_click_curves_match_numpy() -> None:
    rng = np.random.default_rng(0)
    steps = rng.uniform(-0.05, 0.12, size=(300, 21))
    curves = np.clip(np.cumsum(steps, 1) + rng.uniform(0.2, 0.95, size=(300, 1)), 0, 1)
    curves[:7] = 0.9  # exactly at the threshold from the start
    metric = ClickMetrics()
    metric.update(torch.from_numpy(curves))
    values = metric.compute()
    expected = _numpy_scores(curves, miou_clicks=5)
    assert 5 < expected["noc90"] < 20 and expected["noc90_from_start"] < expected["noc90"]
    assert values.keys() == expected.keys()
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-12), key


def test_a_curve_that_never_reaches_the_threshold_counts_twenty_clicks() -> None:
    metric = ClickMetrics()
    curve = torch.full((1, 21), 0.84, dtype=torch.float64)
    curve[0, 0] = NAN
    curve[0, 20] = 0.899
    metric.update(curve)
    values = metric.compute()
    assert values["noc85"] == 20 and values["noc90"] == 20
    assert math.isnan(values["noc90_from_start"])  # no curve had a start


def test_nothing_scored_is_nan() -> None:
    metric = ClickMetrics()
    metric.update(torch.zeros(0, 21, dtype=torch.float64))  # a batch whose images were all left out
    values = metric.compute()
    assert set(values) == {f"miou_{k}" for k in range(1, 6)} | {
        "noc85",
        "noc90",
        "noc90_from_start",
    }
    assert all(math.isnan(value) for value in values.values())


@pytest.mark.parametrize(
    ("curve", "message"),
    [
        ([0.5, 0.6, NAN, 0.95, NAN], "between two IoUs"),
        ([0.5, 0.6, 0.89, NAN, NAN], "stop_iou >= 0.9"),
        ([NAN, NAN, NAN, NAN, NAN], "click 0 or click 1"),
        ([0.5, 0.6, 0.7], r"\(B, 5\)"),
    ],
)
def test_curves_whose_noc_is_unknown_are_refused(curve: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClickMetrics(max_clicks=4, miou_clicks=2).update(torch.tensor([curve], dtype=torch.float64))


def test_worth_clicks_interpolates_between_click_counts() -> None:
    curve = [0.5, 0.8, 0.9]
    assert worth_clicks(0.65, curve) == pytest.approx(1.5)
    assert worth_clicks(0.25, curve) == pytest.approx(0.5)  # below click 1: from mIoU@0 = 0
    assert worth_clicks(0.8, curve) == 2.0
    assert worth_clicks(0.9, curve) == 3.0
    assert worth_clicks(0.0, curve) == 0.0
    assert worth_clicks(0.95, curve) is None  # better than 3 clicks: ">3"


def test_worth_clicks_takes_the_first_crossing_of_a_curve_that_dips() -> None:
    curve = [0.5, 0.9, 0.7, 0.95]
    assert worth_clicks(0.8, curve) == pytest.approx(1 + 0.3 / 0.4)
    assert worth_clicks(0.92, curve) == pytest.approx(3 + 0.22 / 0.25)


def test_worth_clicks_refuses_nan_and_empty_curves() -> None:
    with pytest.raises(ValueError):
        worth_clicks(NAN, [0.5])
    with pytest.raises(ValueError):
        worth_clicks(0.5, [0.4, NAN])
    with pytest.raises(ValueError):
        worth_clicks(0.5, [])


_RANK = """
import json, sys
import torch
import torch.distributed as dist
from lit_gradcam.evaluation.click_metrics import ClickMetrics

dist.init_process_group("gloo")
curves = torch.tensor(json.loads(sys.argv[1]), dtype=torch.float64)
rank = dist.get_rank()
metric = ClickMetrics(max_clicks=6, miou_clicks=3)
metric.update(curves[:3] if rank == 0 else curves[3:])  # uneven: 3 and 1 curves
print(json.dumps(metric.compute()))
dist.destroy_process_group()
"""


def test_two_gloo_processes_give_the_one_process_values() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    curves = json.dumps(CURVES.tolist())
    ranks = []
    for rank in range(2):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "OMP_NUM_THREADS": "1",
        }
        args = [sys.executable, "-c", _RANK, curves]
        ranks.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=120)[0] for process in ranks]
    assert [process.returncode for process in ranks] == [0, 0]
    single = ClickMetrics(max_clicks=6, miou_clicks=3)
    single.update(CURVES)
    expected = single.compute()
    for output in outputs:
        synced = json.loads(output)
        assert synced.keys() == expected.keys()
        for key, value in expected.items():
            assert synced[key] == pytest.approx(value, rel=1e-12), key
