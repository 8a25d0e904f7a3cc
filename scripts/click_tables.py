"""The click blocks: the simulated user's clicks on the quick start's test with GrabCut and
sam_tiny, and what each no-click strategy is worth in clicks."""

from __future__ import annotations

from result_tables import best_method, fmt, load_result

#: Clicks on the simulated user's mIoU curve (mIoU@1..5).
CLICK_CURVE = 5


def _clicks_run() -> tuple[dict, dict, list[dict]]:
    """The quick start's test with GrabCut and sam_tiny and the full click evaluation."""
    run = load_result("quickstart_sam_test.json")
    return run, run["results"]["clicks"], run["results"]["rows"]


def _clicks(value: float | None) -> str:
    """A click count; past the curve's end where the target IoU was never reached."""
    return f">{CLICK_CURVE}" if value is None else f"{value:.2f}"


def clicks_summary() -> str:
    """Per segmenter: the simulated user's mIoU after 1-5 clicks and NoC@85/90, and what the
    best no-click strategy is worth in clicks."""
    run, clicks, rows = _clicks_run()
    lines = [
        "| segmenter | "
        + " | ".join(f"mIoU@{k}" for k in range(1, CLICK_CURVE + 1))
        + " | NoC@85 | NoC@90 | best no-click strategy | its IoU | worth (clicks) "
        "| NoC@90 from it |",
        "|---|" + "---|" * (CLICK_CURVE + 6),
    ]
    for segmenter, scores in clicks.items():
        best = best_method([row for row in rows if row["segmenter"] == segmenter])
        curve = " | ".join(fmt(scores[f"miou_{k}"]) for k in range(1, CLICK_CURVE + 1))
        lines.append(
            f"| {segmenter} | {curve} | {scores['noc85']:.2f} | {scores['noc90']:.2f} "
            f"| {best['strategy']} | {fmt(best['iou'])} | {_clicks(best['worth_clicks'])} "
            f"| {_clicks(best.get('noc90_from_start'))} |"
        )
    return (
        f"`{run['command']}`: {run['results']['num_images']} test images in "
        f"{run['seconds'] / 60:.1f} min ({run['machine']}; `results/quickstart_sam_test.json`)."
        "\n\n" + "\n".join(lines)
    )


def clicks_per_strategy() -> str:
    """Per strategy and segmenter: its IoU, what it is worth in clicks and the clicks it still
    needs to reach an IoU of 0.90."""
    _, clicks, rows = _clicks_run()
    segmenters = list(clicks)
    lines = [
        "| strategy | "
        + " | ".join(f"{s}: IoU / worth / NoC@90 from it" for s in segmenters)
        + " |",
        "|---|" + "---|" * len(segmenters),
    ]
    for strategy in dict.fromkeys(row["strategy"] for row in rows):
        cells, oracle = [], ""
        for segmenter in segmenters:
            row = next(r for r in rows if r["segmenter"] == segmenter and r["strategy"] == strategy)
            start = row.get("noc90_from_start")
            cells.append(
                f"{fmt(row['iou'])} / {_clicks(row['worth_clicks'])} / "
                + ("–" if row["uses_ground_truth"] else _clicks(start))
            )
            oracle = " (oracle)" if row["uses_ground_truth"] else ""
        lines.append(f"| {strategy}{oracle} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
