"""TrainAugmentation: each transform does what it says, and the class is never touched."""

import pytest
import torch

from lit_gradcam.classifier.augmentation import MirrorOnly, TrainAugmentation
from lit_gradcam.imaging import normalize_imagenet

#: every transform off
OFF = dict(
    hflip=0.0, translate=0.0, scale=(1.0, 1.0), rotate=0.0, brightness=0.0, contrast=0.0,
    saturation=0.0, channel_shuffle=0.0, blur=0.0, noise=0.0,
)  # fmt: skip


def _square_batch(batch: int = 4) -> torch.Tensor:
    """Normalised images of a white 16x16 square centred on a black 48x64 canvas."""
    pixels = torch.zeros(batch, 3, 48, 64)
    pixels[:, :, 16:32, 24:40] = 1.0
    return normalize_imagenet(pixels)


def _pixels(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return images * std + mean


def test_everything_off_is_the_identity() -> None:
    images = normalize_imagenet(torch.rand(3, 3, 48, 64))
    out = TrainAugmentation(**OFF)(images)
    torch.testing.assert_close(out, images, atol=1e-4, rtol=0)


def test_strength_zero_leaves_only_the_mirror() -> None:
    images = normalize_imagenet(torch.rand(3, 3, 48, 64))
    out = TrainAugmentation(hflip=0.0)(images, strength=0.0)
    torch.testing.assert_close(out, images, atol=1e-4, rtol=0)
    mirrored = TrainAugmentation(hflip=1.0)(images, strength=0.0)
    torch.testing.assert_close(mirrored, images.flip(-1), atol=1e-4, rtol=0)


def test_strength_scales_each_range_towards_off() -> None:
    half = TrainAugmentation(scale=(0.8, 1.2), rotate=10.0, noise=0.02).scaled(0.5)
    assert half.scale == pytest.approx((0.9, 1.1))
    assert (half.rotate, half.noise, half.hflip) == pytest.approx((5.0, 0.01, 0.5))
    with pytest.raises(ValueError, match="strength"):
        TrainAugmentation()(_square_batch(), strength=1.5)


def test_it_computes_in_float32_inside_a_bf16_autocast_region() -> None:
    """Inside a mixed-precision training step the jitter is the one float32 gives (its blur
    blends two images, which autocast would otherwise compute in two precisions)."""
    images = _square_batch(8)
    torch.manual_seed(0)
    expected = TrainAugmentation(blur=1.0)(images)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = TrainAugmentation(blur=1.0)(images)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_hflip_mirrors_every_image_when_certain() -> None:
    images = normalize_imagenet(torch.rand(3, 3, 48, 64))
    out = TrainAugmentation(**{**OFF, "hflip": 1.0})(images)
    torch.testing.assert_close(out, images.flip(-1), atol=1e-4, rtol=0)


def test_zoom_out_shrinks_the_shape() -> None:
    out = _pixels(TrainAugmentation(**{**OFF, "scale": (0.5, 0.5)})(_square_batch()))
    # a 16x16 square (256 px) zoomed by 0.5 about the centre covers about 64 px there (the
    # border is reflected, so mirrored copies appear further out)
    area = (out[:, 0, 12:36, 16:48] > 0.5).sum(dim=(1, 2)).float()
    assert torch.all((area > 48) & (area < 80)), area


def test_shift_moves_the_shape_within_the_bound() -> None:
    torch.manual_seed(0)
    out = _pixels(TrainAugmentation(**{**OFF, "translate": 0.1})(_square_batch(16)))
    xs = torch.arange(64).float()
    weights = (out[:, 0] > 0.5).float().sum(1)
    centre_x = (weights * xs).sum(1) / weights.sum(1)
    shift = (centre_x - 31.5).abs()
    assert shift.max() <= 0.1 * 64 + 0.5
    assert shift.max() > 1.0  # it does move


def test_channel_shuffle_permutes_channels() -> None:
    torch.manual_seed(0)
    pixels = torch.rand(8, 3, 48, 64)
    out = _pixels(TrainAugmentation(**{**OFF, "channel_shuffle": 1.0})(normalize_imagenet(pixels)))
    moved = 0
    for before, after in zip(pixels, out, strict=True):
        matches = [
            [torch.allclose(after[i], before[j], atol=1e-5) for j in range(3)] for i in range(3)
        ]
        assert all(sum(row) == 1 for row in matches)  # each output channel is one input channel
        moved += not all(matches[i][i] for i in range(3))
    assert moved > 0


def test_blur_softens_a_hard_edge() -> None:
    out = _pixels(
        TrainAugmentation(**{**OFF, "blur": 1.0, "blur_amount": (1.0, 1.0)})(_square_batch())
    )
    edge = out[:, 0, 24, 22:26]  # across the square's left edge at x = 24
    assert torch.all((edge[:, 1] > 0.05) & (edge[:, 1] < 0.5))  # outside, now partly lit
    assert torch.all((edge[:, 2] > 0.5) & (edge[:, 2] < 0.95))  # inside, now partly dimmed


def test_output_stays_a_valid_normalised_image() -> None:
    torch.manual_seed(0)
    out = _pixels(TrainAugmentation(brightness=0.9, contrast=0.9, noise=0.5)(_square_batch(8)))
    assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rotate": 30.0}, "diamond"),
        ({"scale": (1.2, 0.8)}, "scale"),
        ({"blur": 2.0}, "blur is a probability"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainAugmentation(**kwargs)


def test_mirror_only_mirrors_and_does_nothing_else() -> None:
    """The preset equals every transform off but the mirror, and leaves an unmirrored batch as
    it was."""
    preset, by_hand = MirrorOnly(hflip=0.5), TrainAugmentation(**{**OFF, "hflip": 0.5})
    assert vars(preset) == vars(by_hand)
    images = _square_batch()
    out = MirrorOnly(hflip=0.0)(images)
    torch.testing.assert_close(out, images)
