"""Grad-CAM speed: ours vs the grad-cam package vs captum's LayerGradCam, in one process.

    python benchmarks/gradcam_speed.py                 # CPU, batches 64 and 500
    python benchmarks/gradcam_speed.py --device cuda

resnet18 (random weights, 5 classes, eval mode) on 48 x 64 inputs, at ``layer2[-1]`` and at
``layer3[-1] + layer2[-1]``. Every contender gets the same explicit per-image targets (the
model's predictions, computed before timing) and returns numpy maps (B, H, W) in [0, 1]:

- ours: ``GradCAM(model, layers)(images, targets)``;
- grad-cam: ``pytorch_grad_cam.GradCAM(model, modules)(images, [ClassifierOutputTarget(t)...])``
  in a ``with`` block per call, as the package's README uses it;
- captum: ``LayerGradCam(model, layer).attribute(images, target, relu_attributions=True)`` per
  layer, then the same min-max, bilinear upsampling (align_corners=False) and layer averaging as
  ours, batched in torch. captum maps one layer per call, so two layers cost it two forward and
  two backward passes: that is how it would be used, and the table says so.

Each cell: one warm-up call, then the median of `--repeats` timed calls; contenders take turns
within each repeat so that background load hits them alike. The last columns are the largest
difference of each peer's maps from ours (all three compute the same maps).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import LayerGradCam
from pytorch_grad_cam import GradCAM as PackageGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from lit_gradcam.cam import GradCAM
from lit_gradcam.cam.maps import minmax

LAYER_SETS = {"layer2[-1]": ("layer2.1",), "layer3[-1]+layer2[-1]": ("layer3.1", "layer2.1")}
Contender = Callable[[Tensor, Tensor], np.ndarray]


def ours(model: nn.Module, layers: tuple[str, ...]) -> Contender:
    cam = GradCAM(model, list(layers))
    return lambda images, targets: cam(images, targets)


def grad_cam_package(model: nn.Module, layers: tuple[str, ...]) -> Contender:
    modules = [model.get_submodule(name) for name in layers]

    def run(images: Tensor, targets: Tensor) -> np.ndarray:
        # Its hooks live as long as the object: scope them to the call, or they would also
        # fire (and hoard activations) while the other contenders run.
        with PackageGradCAM(model, modules) as cam:
            return cam(images, [ClassifierOutputTarget(int(t)) for t in targets])

    return run


def captum(model: nn.Module, layers: tuple[str, ...]) -> Contender:
    cams = [LayerGradCam(model, model.get_submodule(name)) for name in layers]

    def run(images: Tensor, targets: Tensor) -> np.ndarray:
        per_layer = []
        for cam in cams:
            attribution = cam.attribute(images, target=targets, relu_attributions=True)
            scaled = minmax(attribution.detach()[:, 0])[:, None]
            upsampled = F.interpolate(
                scaled, size=images.shape[-2:], mode="bilinear", align_corners=False
            )
            per_layer.append(upsampled[:, 0])
        return minmax(torch.stack(per_layer).mean(0)).cpu().numpy()

    return run


CONTENDERS = {"ours": ours, "grad-cam": grad_cam_package, "captum": captum}


def time_call(run: Contender, images: Tensor, targets: Tensor) -> tuple[float, np.ndarray]:
    if images.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    maps = run(images, targets)
    if images.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, maps


def bench_cell(
    model: nn.Module, layers: tuple[str, ...], images: Tensor, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per contender, and each peer's largest map difference from ours."""
    with torch.no_grad():
        targets = model(images).argmax(1)
    runs = {name: build(model, layers) for name, build in CONTENDERS.items()}
    maps = {name: time_call(run, images, targets)[1] for name, run in runs.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(time_call(run, images, targets)[0])
    diffs = {name: float(np.abs(maps[name] - maps["ours"]).max()) for name in runs}
    return {name: statistics.median(t) for name, t in times.items()}, diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=5).eval().to(args.device)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"Grad-CAM, resnet18, 48x64, {device_name}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats} after 1 warm-up (seconds per batch)\n"
    )
    print(
        "| batch | layers | ours | grad-cam | captum | ours/grad-cam | ours/captum "
        "| max diff grad-cam, captum |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for batch in args.batches:
        images = torch.randn(batch, 3, 48, 64, device=args.device)
        for label, layers in LAYER_SETS.items():
            t, diff = bench_cell(model, layers, images, args.repeats)
            print(
                f"| {batch} | {label} | {t['ours']:.3f} | {t['grad-cam']:.3f} "
                f"| {t['captum']:.3f} | {t['ours'] / t['grad-cam']:.2f} "
                f"| {t['ours'] / t['captum']:.2f} | {diff['grad-cam']:.1e}, {diff['captum']:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
