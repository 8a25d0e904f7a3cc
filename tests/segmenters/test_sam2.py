"""Sam2Segmenter equals SAM2ImagePredictor mask for mask on SAM 2.1 hiera_t (random weights,
built once: its image encoder is slow on a CPU), embeds once per image, loads sam2 checkpoints,
and says in one line what to do when sam2 or a checkpoint is missing."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from segment_anything.utils.amg import calculate_stability_score

from lit_gradcam.cli import cli_main, main
from lit_gradcam.errors import ConfigError, MissingFileError
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.segmenters.checkpoints import (
    CACHE_ENV,
    SAM2_CHECKPOINTS,
    CheckpointDownloadError,
    CheckpointSpec,
)
from lit_gradcam.segmenters.integrity import STAMP_SUFFIX
from lit_gradcam.segmenters.mask_choice import STABILITY_OFFSET
from lit_gradcam.segmenters.sam2 import Sam2Segmenter, Sam2State
from lit_gradcam.segmenters.sam2_models import INSTALL_COMMAND, Sam2NotInstalledError
from lit_gradcam.segmenters.sam_models import CheckpointArchitectureError

if TYPE_CHECKING:
    from sam2.modeling.sam2_base import SAM2Base
    from sam2.sam2_image_predictor import SAM2ImagePredictor

# sam2 is optional: without it this module is skipped (the imports above do not need it)
build_sam = pytest.importorskip("sam2.build_sam")
image_predictor = pytest.importorskip("sam2.sam2_image_predictor")

#: (count, height, width) of each size's batch: one tensor for Sam2Segmenter, one list for the
#: predictor's `set_image_batch`.
SIZES = {"landscape": (2, 48, 64), "portrait": (1, 70, 30)}


def _images(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth random uint8 images (upsampled noise) so the encoder sees some structure."""
    generator = torch.Generator().manual_seed(seed)
    small = torch.rand(batch, 3, height // 6, width // 6, generator=generator)
    big = torch.nn.functional.interpolate(small, (height, width), mode="bilinear")
    return (big * 255).round().to(torch.uint8)


@dataclass
class Embedded:
    """Each size's images, its Sam2Segmenter state and the predictor set on its images, and the
    image-encoder calls (images per call) that `embed` made."""

    images: dict[str, torch.Tensor]
    states: dict[str, Sam2State]
    predictors: dict[str, SAM2ImagePredictor]
    encoder_calls: list[int]


@pytest.fixture(scope="module")
def model() -> SAM2Base:
    torch.manual_seed(0)
    return build_sam.build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")


@pytest.fixture(scope="module")
def embedded(model: SAM2Base) -> Embedded:
    """Each size embedded by Sam2Segmenter (one image per encoder call), then by the predictor
    (`set_image_batch`)."""
    images = {size: _images(*shape, seed=i) for i, (size, shape) in enumerate(SIZES.items())}
    calls: list[int] = []
    handle = model.image_encoder.register_forward_hook(
        lambda module, args, output: calls.append(args[0].shape[0])
    )
    try:
        segmenter = Sam2Segmenter.from_model(model, encode_batch_size=1)
        states = {size: segmenter.embed(batch) for size, batch in images.items()}
    finally:
        handle.remove()
    predictors = {}
    for size, batch in images.items():
        predictors[size] = image_predictor.SAM2ImagePredictor(model)
        predictors[size].set_image_batch([image.permute(1, 2, 0).numpy() for image in batch])
    return Embedded(images, states, predictors, calls)


def _reference(
    embedded: Embedded, size: str, prompts: Prompts, multimask: list[bool]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The predictor's candidate logits (C, H, W) and predicted IoU (C,) for each image of
    `size`, given its real points only, with the multimask output each image asks for
    (`predict_batch` takes one for all images: one call per value)."""
    count = SIZES[size][0]
    ones = [prompts.select(index) for index in range(count)]
    points = [one.points[0].numpy() if one.points.shape[1] else None for one in ones]
    labels = [one.labels[0].numpy() if one.points.shape[1] else None for one in ones]
    boxes = [None if one.boxes is None else one.boxes[0].numpy() for one in ones]
    logits, ious = [None] * count, [None] * count
    for value in sorted(set(multimask)):
        candidates, iou, _ = embedded.predictors[size].predict_batch(
            points, labels, boxes, multimask_output=value, return_logits=True
        )
        for index in range(count):
            if multimask[index] == value:
                logits[index], ious[index] = candidates[index], iou[index]
    return logits, ious


def _assert_matches_predictor(
    segmenter: Sam2Segmenter,
    embedded: Embedded,
    size: str,
    prompts: Prompts,
    multimask: list[bool],
) -> list[float]:
    """Masks identical to the predictor's best (by predicted IoU), scores within 1e-4; the
    masks' foreground fractions."""
    masks, scores = segmenter.predict(embedded.states[size], prompts)
    assert masks.shape == (SIZES[size][0], *SIZES[size][1:]) and masks.dtype == torch.bool
    fractions = []
    for index, (ref_logits, ref_iou) in enumerate(
        zip(*_reference(embedded, size, prompts, multimask), strict=True)
    ):
        best = int(ref_iou.argmax())
        assert np.array_equal(masks[index].numpy(), ref_logits[best] > 0)
        assert scores[index].item() == pytest.approx(float(ref_iou[best]), abs=1e-4)
        fractions.append(float((ref_logits[best] > 0).mean()))
    return fractions


def _tensor(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float)


#: Prompts per size and the multimask output each image gets under multimask "auto".
CASES = {
    "one point": {
        "landscape": (
            Prompts(_tensor([[[10, 20]], [[40, 5]]]), torch.tensor([[1], [0]])),
            [True, True],
        ),
        "portrait": (Prompts(_tensor([[[20, 60]]]), torch.ones(1, 1, dtype=torch.long)), [True]),
    },
    "box": {
        "landscape": (
            Prompts(
                torch.zeros(2, 0, 2),
                torch.zeros(2, 0, dtype=torch.long),
                _tensor([[5, 5, 30, 40], [0, 0, 63, 47]]),
            ),
            [False, False],
        ),
        "portrait": (
            Prompts(
                torch.zeros(1, 0, 2),
                torch.zeros(1, 0, dtype=torch.long),
                _tensor([[2, 10, 25, 50]]),
            ),
            [False],
        ),
    },
    "padded points": {
        "landscape": (
            Prompts.from_lists(
                [_tensor([[1, 1], [30, 30], [60, 2]]), _tensor([[33, 20]])],
                [torch.tensor([0, 1, 0]), torch.tensor([1])],
            ),
            [False, True],
        ),
        "portrait": (
            Prompts.from_lists([torch.zeros(0, 2)], [torch.zeros(0, dtype=torch.long)]),
            [True],
        ),
    },
    "padded points and a box": {
        "landscape": (
            Prompts.from_lists(
                [_tensor([[12, 8], [40, 30]]), _tensor([[50, 40]])],
                [torch.tensor([1, 0]), torch.tensor([0])],
                _tensor([[2, 3, 40, 44], [30, 5, 60, 40]]),
            ),
            [False, False],
        ),
        "portrait": (
            Prompts(
                _tensor([[[5, 60], [20, 10]]]), torch.tensor([[1, 1]]), _tensor([[0, 0, 29, 69]])
            ),
            [False],
        ),
    },
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("size", SIZES)
def test_matches_predictor(model: SAM2Base, embedded: Embedded, case: str, size: str) -> None:
    prompts, multimask = CASES[case][size]
    segmenter = Sam2Segmenter.from_model(model, mask_choice="iou")
    fractions = _assert_matches_predictor(segmenter, embedded, size, prompts, multimask)
    if case != "padded points" or size != "portrait":  # no prompt at all may well cut nothing
        assert any(0 < fraction < 1 for fraction in fractions), "only trivial masks compared"


@pytest.mark.parametrize(
    ("mode", "case", "expected"),
    [("always", "padded points and a box", True), ("never", "one point", False)],
)
def test_multimask_modes(
    model: SAM2Base, embedded: Embedded, mode: str, case: str, expected: bool
) -> None:
    """multimask "always" gives three candidates to a prompt that is not ambiguous, "never" one
    (sam2's decoder falling back to the best of three where it is unstable) to one that is."""
    prompts, _ = CASES[case]["portrait"]
    segmenter = Sam2Segmenter.from_model(model, multimask=mode, mask_choice="iou")
    _assert_matches_predictor(segmenter, embedded, "portrait", prompts, [expected])


def test_encoder_runs_once_per_image(model: SAM2Base, embedded: Embedded) -> None:
    assert embedded.encoder_calls == [1, 1, 1]  # three images embedded, one per call
    calls: list[int] = []
    handle = model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        segmenter = Sam2Segmenter.from_model(model)
        for case in CASES.values():
            segmenter.predict(embedded.states["portrait"], case["portrait"][0])
    finally:
        handle.remove()
    assert calls == []  # four prompt sets, no further encoder pass


def test_select_repeats_images(model: SAM2Base, embedded: Embedded) -> None:
    """Selected images, one of them twice, are segmented as the predictor segments them."""
    prompts, multimask = CASES["one point"]["landscape"]
    index = torch.tensor([1, 1, 0])
    segmenter = Sam2Segmenter.from_model(model, mask_choice="iou")
    state = segmenter.select(embedded.states["landscape"], index)
    picked = Prompts(prompts.points[index], prompts.labels[index])
    masks, scores = segmenter.predict(state, picked)
    logits, ious = _reference(embedded, "landscape", prompts, multimask)
    for row, image in enumerate(index.tolist()):
        best = int(ious[image].argmax())
        assert np.array_equal(masks[row].numpy(), logits[image][best] > 0)
        assert scores[row].item() == pytest.approx(float(ious[image][best]), abs=1e-4)


@pytest.mark.parametrize("choice", ["largest", "stability"])
def test_mask_choice_keeps_the_candidate_the_rule_names(
    model: SAM2Base, embedded: Embedded, choice: str
) -> None:
    """Among the predictor's three candidates: the largest mask, or the most stable one by
    segment_anything's stability score."""
    prompts, _ = CASES["one point"]["landscape"]
    segmenter = Sam2Segmenter.from_model(model, mask_choice=choice)
    logits, scores = segmenter.predict_logits(embedded.states["landscape"], prompts)
    chosen_differently = 0
    for index, (candidates, iou) in enumerate(
        zip(*_reference(embedded, "landscape", prompts, [True, True]), strict=True)
    ):
        if choice == "largest":
            kept = int((candidates > 0).reshape(3, -1).sum(1).argmax())
        else:
            stability = calculate_stability_score(
                torch.from_numpy(candidates), 0.0, STABILITY_OFFSET
            )
            kept = int(stability.argmax())
        chosen_differently += kept != int(iou.argmax())
        assert np.array_equal(logits[index].numpy() > 0, candidates[kept] > 0)
        np.testing.assert_allclose(logits[index].numpy(), candidates[kept], rtol=0, atol=1e-4)
        assert scores[index].item() == pytest.approx(float(iou[kept]), abs=1e-4)
    if choice == "largest":  # the rule is not the predicted IoU in disguise here
        assert chosen_differently > 0


def test_bf16_autocast_runs_the_encoder_in_bf16_and_keeps_float32_features(
    model: SAM2Base, embedded: Embedded
) -> None:
    seen: list[torch.dtype] = []
    qkv = model.image_encoder.trunk.blocks[0].attn.qkv
    handle = qkv.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    try:
        state = Sam2Segmenter.from_model(model, autocast="bf16").embed(embedded.images["portrait"])
    finally:
        handle.remove()
    assert seen == [torch.bfloat16]
    features = (state.image_embed, *state.high_res_feats)
    assert [feature.dtype for feature in features] == [torch.float32] * 3
    reference = embedded.states["portrait"]
    assert [feature.shape for feature in features] == [
        feature.shape for feature in (reference.image_embed, *reference.high_res_feats)
    ]


def test_checkpoint_file_round_trip(tmp_path: Path, model: SAM2Base, embedded: Embedded) -> None:
    """The random model saved as sam2 saves its checkpoints and loaded through the segmenter:
    every weight equal, and the predictor's masks from its decoder."""
    path = tmp_path / "random_hiera_t.pt"
    torch.save({"model": model.state_dict()}, path)
    segmenter = Sam2Segmenter("hiera_t", checkpoint=str(path), mask_choice="iou")
    loaded = segmenter.model.state_dict()
    assert segmenter.model is not model
    assert loaded.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded[key], value) for key, value in model.state_dict().items())
    assert path.with_name(path.name + STAMP_SUFFIX).is_file()  # its sha256 recorded once
    prompts, multimask = CASES["padded points and a box"]["portrait"]
    _assert_matches_predictor(segmenter, embedded, "portrait", prompts, multimask)


def test_a_file_that_is_no_sam2_checkpoint_is_named(tmp_path: Path, model: SAM2Base) -> None:
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)  # not under "model"
    with pytest.raises(CheckpointArchitectureError, match=r"plain.pt is not a SAM 2.1 checkpoint"):
        Sam2Segmenter("hiera_t", checkpoint=str(plain)).to("cpu")
    other = tmp_path / "tiny_as_small.pt"
    torch.save({"model": model.state_dict()}, other)
    with pytest.raises(CheckpointArchitectureError, match=r"'hiera_s' \(it looks like a 'hiera_t'"):
        Sam2Segmenter("hiera_s", checkpoint=str(other)).to("cpu")


def test_offline_without_checkpoint_says_in_one_line_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The official file cannot be fetched (a file:// URL to nothing stands in for no network):
    one line names the URL and the path in the cache to save it at, and the cache stays empty."""
    official = SAM2_CHECKPOINTS["hiera_t"]
    url = f"file://{tmp_path / 'offline' / official.filename}"
    monkeypatch.setitem(SAM2_CHECKPOINTS, "hiera_t", CheckpointSpec(url, official.sha256))
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    with pytest.raises(CheckpointDownloadError) as info:
        Sam2Segmenter("hiera_t").to("cpu")
    message = str(info.value)
    assert "\n" not in message
    assert f"could not download {url}" in message
    assert f"download {url} and save it as {cache / 'sam2.1_hiera_tiny.pt'}" in message
    assert list(cache.iterdir()) == []


def test_missing_checkpoint_file_says_in_one_line_how_to_get_it(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "sam2.1_hiera_tiny.pt"
    with pytest.raises(MissingFileError) as info:
        Sam2Segmenter("hiera_t", checkpoint=str(path)).to("cpu")
    message = str(info.value)
    assert "\n" not in message
    assert f"download {SAM2_CHECKPOINTS['hiera_t'].url} and save it as {path}" in message


def test_command_line_names_the_missing_checkpoint_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`main.py test` with SAM 2.1 and no file at `checkpoint:` (the real CLI, a classifier
    trained one step): one `error:` line saying where to download the file and save it."""
    tiny = [
        "--data.root", str(tmp_path / "shapes"),
        "--data.train_size", "10", "--data.val_size", "5", "--data.test_size", "5",
        "--data.batch_size", "5", "--data.eval_batch_size", "5",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "logs"),
        "--trainer.enable_progress_bar", "false", "--trainer.max_steps", "1",
    ]  # fmt: skip
    cli_main(["fit", *tiny, "--trainer.logger", "false"])
    missing = tmp_path / "checkpoints" / "sam2.1_hiera_tiny.pt"
    segmenters = (
        "[{class_path: lit_gradcam.segmenters.sam2.Sam2Segmenter, "
        f"init_args: {{model_type: hiera_t, checkpoint: {missing}}}}}]"
    )
    args = ["test", *tiny, "--ckpt_path", str(tmp_path / "ckpt" / "last.ckpt")]
    with pytest.raises(SystemExit) as info:
        main([*args, "--method.segmenters", segmenters])
    code = info.value.code
    message = code if isinstance(code, str) else capsys.readouterr().err
    assert code not in (None, 0) and "Traceback" not in message
    (line,) = [line for line in message.splitlines() if "error:" in line]
    url = SAM2_CHECKPOINTS["hiera_t"].url
    assert line.startswith("error: ") and f"download {url} and save it as {missing}" in line


def test_without_sam2_a_config_parses_and_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in ("sam2", "sam2.build_sam"):
        monkeypatch.setitem(sys.modules, module, None)  # `import sam2` fails as if absent
    segmenter = Sam2Segmenter("hiera_b+", checkpoint="nowhere.pt")
    with pytest.raises(Sam2NotInstalledError) as info:
        segmenter.to("cpu")
    message = str(info.value)
    assert "\n" not in message and message.endswith(INSTALL_COMMAND)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_type": "hiera_xl"}, "SAM 2.1 model_type 'hiera_xl' is unknown"),
        ({"multimask": "sometimes"}, "multimask"),
        ({"autocast": "fp8"}, "autocast"),
        ({"encode_batch_size": 0}, "encode_batch_size"),
        ({"mask_choice": "biggest"}, "mask_choice"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Sam2Segmenter(**kwargs)
