"""SamSegmenter equals SamPredictor mask for mask (decoding batched across images), embeds once,
and loads lazily; sam_tiny is built from the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import Sam

from lit_gradcam.prompt_types import Prompts
from lit_gradcam.segmenters.sam import SamSegmenter, decode_masks
from lit_gradcam.segmenters.sam_models import CheckpointArchitectureError, build_sam_tiny


def _images(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random uint8 images (upsampled noise) so the encoder sees some structure."""
    generator = torch.Generator().manual_seed(seed)
    small = torch.rand(batch, 3, max(height // 8, 1), max(width // 8, 1), generator=generator)
    big = torch.nn.functional.interpolate(small, (height, width), mode="bilinear")
    return (big * 255).round().to(torch.uint8)


def _reference(
    sam: Sam, image: torch.Tensor, prompts: Prompts, multimask: bool
) -> tuple[np.ndarray, float]:
    """SamPredictor's logits at the original size and predicted IoU of its best mask (the
    segmenter's `mask_choice: iou`; tests/segmenters/test_mask_choice.py checks the others)."""
    predictor = SamPredictor(sam)
    predictor.set_image(image.permute(1, 2, 0).numpy())
    has_points = prompts.points.shape[1] > 0
    logits, iou, _ = predictor.predict(
        point_coords=prompts.points[0].numpy() if has_points else None,
        point_labels=prompts.labels[0].numpy() if has_points else None,
        box=None if prompts.boxes is None else prompts.boxes[0].numpy(),
        multimask_output=multimask,
        return_logits=True,
    )
    best = int(iou.argmax())
    return logits[best], float(iou[best])


def _assert_matches_predictor(
    segmenter: SamSegmenter,
    images: torch.Tensor,
    prompts: Prompts,
    multimask: list[bool],
    reference: Sam | None = None,
) -> list[float]:
    """Compare logits (tolerance), masks (exactly) and scores with SamPredictor on `reference`
    (default: the segmenter's own model); the reference masks' foreground fractions."""
    reference = segmenter.model if reference is None else reference
    state = segmenter.embed(images)
    logits, scores = segmenter.predict_logits(state, prompts)
    masks, mask_scores = segmenter.predict(state, prompts)
    assert masks.shape == images.shape[:1] + images.shape[2:] and masks.dtype == torch.bool
    assert torch.equal(scores, mask_scores)
    fractions = []
    for index in range(images.shape[0]):
        ref_logits, ref_iou = _reference(
            reference, images[index], prompts.select(index), multimask[index]
        )
        np.testing.assert_allclose(logits[index].numpy(), ref_logits, rtol=0, atol=1e-5)
        assert np.array_equal(masks[index].numpy(), ref_logits > 0)
        assert scores[index].item() == pytest.approx(ref_iou, abs=1e-6)
        fractions.append(float((ref_logits > 0).mean()))
    return fractions


def _tensor(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float)


CASES = {
    "one foreground point": (
        Prompts(_tensor([[[10, 20]], [[40, 5]], [[63, 47]]]), torch.ones(3, 1, dtype=torch.long)),
        [True, True, True],
    ),
    "foreground and background": (
        Prompts(_tensor([[[10, 20], [50, 30]]] * 3), torch.tensor([[1, 0], [0, 1], [1, 1]])),
        [False, False, False],
    ),
    "box": (
        Prompts(
            torch.zeros(3, 0, 2),
            torch.zeros(3, 0, dtype=torch.long),
            _tensor([[5, 5, 30, 40], [0, 0, 63, 47], [20, 10, 21, 12]]),
        ),
        [False, False, False],
    ),
    "padded points and a box": (
        Prompts.from_lists(
            [_tensor([[12, 8]]), _tensor([[1, 1], [30, 30], [60, 2]]), _tensor([[33, 20]])],
            [torch.tensor([1]), torch.tensor([0, 1, 0]), torch.tensor([0])],
            _tensor([[2, 3, 40, 44], [10, 10, 50, 40], [0, 0, 63, 47]]),
        ),
        [False, False, False],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_tiny_sam_matches_predictor(tiny_sam: Sam, case: str) -> None:
    prompts, multimask = CASES[case]
    segmenter = SamSegmenter.from_model(tiny_sam, encode_batch_size=2, mask_choice="iou")
    fractions = _assert_matches_predictor(segmenter, _images(3, 48, 64), prompts, multimask)
    assert any(0 < fraction < 1 for fraction in fractions), "only trivial masks compared"


@pytest.mark.parametrize(("mode", "expected"), [("always", True), ("never", False)])
def test_multimask_modes(tiny_sam: Sam, mode: str, expected: bool) -> None:
    prompts = Prompts(_tensor([[[3, 4]], [[20, 30]]]), torch.tensor([[1], [0]]))
    segmenter = SamSegmenter.from_model(tiny_sam, multimask=mode, mask_choice="iou")
    _assert_matches_predictor(segmenter, _images(2, 37, 50, seed=3), prompts, [expected] * 2)


def test_portrait_image_and_no_prompt(tiny_sam: Sam) -> None:
    prompts = Prompts.from_lists(
        [torch.zeros(0, 2), _tensor([[5, 60]])], [torch.zeros(0), torch.ones(1)]
    )
    segmenter = SamSegmenter.from_model(tiny_sam, mask_choice="iou")
    _assert_matches_predictor(segmenter, _images(2, 70, 30, seed=4), prompts, [True, True])


def test_encoder_runs_once_per_image(tiny_sam: Sam) -> None:
    seen: list[int] = []
    handle = tiny_sam.image_encoder.register_forward_hook(
        lambda module, args, output: seen.append(args[0].shape[0])
    )
    try:
        segmenter = SamSegmenter.from_model(tiny_sam, encode_batch_size=2)
        state = segmenter.embed(_images(5, 48, 64))
        for step in range(4):
            points = torch.full((5, step + 1, 2), 10.0)
            segmenter.predict(state, Prompts(points, torch.ones(5, step + 1, dtype=torch.long)))
    finally:
        handle.remove()
    assert seen == [2, 2, 1]  # 5 images, chunks of 2, and nothing for the 4 predict calls


def test_predict_checks_batch_and_prompts(tiny_sam: Sam) -> None:
    segmenter = SamSegmenter.from_model(tiny_sam)
    state = segmenter.embed(_images(2, 48, 64))
    with pytest.raises(ValueError, match="1 prompt sets for 2 embedded images"):
        segmenter.predict(state, Prompts(torch.zeros(1, 1, 2), torch.ones(1, 1, dtype=torch.long)))
    with pytest.raises(ValueError, match="outside"):
        segmenter.predict(
            state, Prompts(torch.full((2, 1, 2), 64.0), torch.ones(2, 1, dtype=torch.long))
        )
    with pytest.raises(ValueError, match="uint8"):
        segmenter.embed(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
        ),
    ],
)
def test_bf16_autocast_runs_the_encoder_in_bf16_and_returns_float32(
    tiny_sam: Sam, device: str
) -> None:
    """A hook inside the encoder sees bfloat16 activations only when autocast is asked for."""
    sam = tiny_sam.to(device)
    seen: list[torch.dtype] = []
    qkv = sam.image_encoder.blocks[0].attn.qkv
    handle = qkv.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    try:
        plain = SamSegmenter.from_model(sam).embed(_images(1, 48, 64))
        mixed = SamSegmenter.from_model(sam, autocast="bf16").embed(_images(1, 48, 64))
    finally:
        handle.remove()
        tiny_sam.to("cpu")
    assert seen == [torch.float32, torch.bfloat16]
    assert plain.embeddings.dtype == mixed.embeddings.dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"multimask": "sometimes"}, "multimask"),
        ({"autocast": "fp8"}, "autocast"),
        ({"encode_batch_size": 0}, "encode_batch_size"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SamSegmenter(**kwargs)


def test_checkpoint_is_resolved_lazily(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pth"
    segmenter = SamSegmenter(checkpoint=str(missing))  # a config parses without the file
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        segmenter.to("cpu")


def test_wrong_architecture_file_is_named(tmp_path: Path, tiny_sam: Sam) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(tiny_sam.state_dict(), path)
    with pytest.raises(CheckpointArchitectureError, match=r"tiny.pth does not match .*'vit_b'"):
        SamSegmenter("vit_b", checkpoint=str(path)).to("cpu")


@pytest.mark.slow
def test_vit_b_from_checkpoint_matches_predictor(tmp_path: Path) -> None:
    """The real vit_b architecture (random weights), saved and loaded as a checkpoint."""
    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"]()
    path = tmp_path / "vit_b_random.pth"
    torch.save(sam.state_dict(), path)
    segmenter = SamSegmenter("vit_b", checkpoint=str(path)).to("cpu")
    assert segmenter.model is not sam
    prompts = Prompts(_tensor([[[20, 15]]]), torch.ones(1, 1, dtype=torch.long))
    fractions = _assert_matches_predictor(segmenter, _images(1, 48, 64), prompts, [True], sam)
    assert 0 < fractions[0] < 1, "only a trivial mask compared"


def test_batched_decoding_groups_images_by_point_count(tiny_sam: Sam) -> None:
    """Images with 1, 3, 0, 1 and 3 points and a box each: one decoder call per point count,
    and still the predictor's masks."""
    points = [
        _tensor([[12, 8]]),
        _tensor([[1, 1], [30, 30], [60, 2]]),
        torch.zeros(0, 2),
        _tensor([[50, 40]]),
        _tensor([[5, 5], [40, 20], [22, 33]]),
    ]
    labels = [torch.tensor(v) for v in ([1], [0, 1, 0], [], [0], [1, 1, 0])]
    boxes = _tensor(
        [[2, 3, 40, 44], [10, 10, 50, 40], [0, 0, 63, 47], [30, 5, 60, 30], [1, 2, 3, 4]]
    )
    prompts = Prompts.from_lists(points, labels, boxes)
    images = _images(5, 48, 64, seed=5)
    segmenter = SamSegmenter.from_model(tiny_sam)
    state = segmenter.embed(images)
    calls: list[int] = []
    handle = tiny_sam.mask_decoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        segmenter.predict(state, prompts)
    finally:
        handle.remove()
    assert len(calls) == 3
    _assert_matches_predictor(segmenter, images, prompts, [False] * 5)


def test_decode_masks_equals_one_decoder_call_per_image(tiny_sam: Sam) -> None:
    torch.manual_seed(0)
    embeddings = torch.randn(4, tiny_sam.prompt_encoder.embed_dim, 64, 64)
    coords = torch.rand(4, 2, 2) * 1000
    labels = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=torch.int)
    boxes = torch.tensor([[10.0, 20, 500, 600]] * 4)
    with torch.no_grad():
        low_res, iou = decode_masks(tiny_sam, embeddings, (coords, labels), boxes, True)
        for index in range(4):
            sparse, dense = tiny_sam.prompt_encoder(
                points=(coords[index : index + 1], labels[index : index + 1]),
                boxes=boxes[index : index + 1],
                masks=None,
            )
            one_low_res, one_iou = tiny_sam.mask_decoder(
                image_embeddings=embeddings[index : index + 1],
                image_pe=tiny_sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )
            torch.testing.assert_close(low_res[index], one_low_res[0], rtol=0, atol=1e-5)
            torch.testing.assert_close(iou[index], one_iou[0], rtol=0, atol=1e-6)
    assert low_res.shape == (4, 3, 256, 256) and iou.shape == (4, 3)


def test_sam_tiny_from_a_state_dict_matches_predictor(tmp_path: Path) -> None:
    """The registry's small SAM (64-pixel input): landscape images pass unresized."""
    torch.manual_seed(0)
    sam = build_sam_tiny()
    path = tmp_path / "sam_tiny.pth"
    torch.save(sam.state_dict(), path)
    segmenter = SamSegmenter("sam_tiny", checkpoint=str(path))
    assert segmenter.model.image_encoder.img_size == 64
    prompts, multimask = CASES["padded points and a box"]
    _assert_matches_predictor(segmenter, _images(3, 48, 64, seed=6), prompts, multimask, sam)
    one_point = Prompts(_tensor([[[3, 50]], [[20, 10]]]), torch.ones(2, 1, dtype=torch.long))
    _assert_matches_predictor(segmenter, _images(2, 70, 30, seed=7), one_point, [True, True], sam)


def test_sam_tiny_without_checkpoint_says_how_to_train_one() -> None:
    with pytest.raises(ValueError, match=r"no official checkpoint.*configs/sam_tiny.yaml"):
        SamSegmenter("sam_tiny").to("cpu")


def test_lightning_checkpoint_of_another_architecture_is_named(tmp_path: Path) -> None:
    """A SamTuner checkpoint is unwrapped before loading, so a mismatch names its architecture."""
    torch.manual_seed(0)
    weights = {f"sam.{key}": value for key, value in build_sam_tiny().state_dict().items()}
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": weights, "hyper_parameters": {"model_type": "sam_tiny"}}, path)
    assert SamSegmenter("sam_tiny", checkpoint=str(path)).model.image_encoder.img_size == 64
    with pytest.raises(CheckpointArchitectureError, match=r"'vit_b' \(it looks like a 'sam_tiny'"):
        SamSegmenter("vit_b", checkpoint=str(path)).to("cpu")


def _narrower_decoder(weights: dict[str, torch.Tensor]) -> None:
    head = "mask_decoder.iou_prediction_head.layers.2.weight"
    weights[head] = weights[head][:, :64]


def _vit_encoder(weights: dict[str, torch.Tensor]) -> None:
    for key in [key for key in weights if key.startswith("image_encoder.")]:
        del weights[key]
    weights["image_encoder.patch_embed.proj.weight"] = torch.zeros(128, 3, 4, 4)


@pytest.mark.parametrize("earlier", [_narrower_decoder, _vit_encoder])
def test_sam_tiny_checkpoint_of_an_earlier_build_says_to_retrain(tmp_path: Path, earlier) -> None:
    """A checkpoint of an earlier `sam_tiny` (a narrower decoder, or the 128-wide ViT image
    encoder it had before its CNN) is named as such, with the command that trains a current
    one."""
    weights = build_sam_tiny().state_dict()
    earlier(weights)
    path = tmp_path / "old_tiny.pth"
    torch.save(weights, path)
    with pytest.raises(
        CheckpointArchitectureError, match=r"earlier build of 'sam_tiny'.*configs/sam_tiny.yaml"
    ):
        SamSegmenter("sam_tiny", checkpoint=str(path)).to("cpu")


def test_sam_tiny_size() -> None:
    """The README and `build_sam_tiny` describe it as about 2.2 M parameters."""
    parameters = sum(p.numel() for p in build_sam_tiny().parameters())
    assert round(parameters / 1e6, 1) == 2.2


def test_selected_images_segment_as_if_embedded_alone(tiny_sam: Sam) -> None:
    """`select` picks images out of a state (repeats allowed): several objects of one image are
    prompted without a second embed, and each mask is SamPredictor's on that image alone."""
    images = _images(3, 48, 64, seed=3)
    segmenter = SamSegmenter.from_model(tiny_sam, mask_choice="iou")
    index = torch.tensor([2, 0, 2])
    prompts = Prompts(
        torch.tensor([[[10.0, 12.0]], [[40.0, 30.0]], [[50.0, 8.0]]]), torch.ones(3, 1).long()
    )
    state = segmenter.select(segmenter.embed(images), index)
    logits, _ = segmenter.predict_logits(state, prompts)
    for row, image in enumerate(index.tolist()):
        expected, _ = _reference(tiny_sam, images[image], prompts.select(row), multimask=True)
        np.testing.assert_allclose(logits[row].numpy(), expected, atol=1e-3, rtol=1e-3)
