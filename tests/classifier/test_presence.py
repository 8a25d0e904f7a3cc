"""ShapePresence: the no-shape flag's own net learns from masks."""

import torch
import torch.nn.functional as F

from lit_gradcam.classifier.presence import ShapePresence


def _squares_on_noise(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Small noise images (24x32), each with a flat 7x7 square in its left half, and the
    squares' masks."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 3, 24, 32, generator=generator) * 0.5
    masks = torch.zeros(count, 24, 32, dtype=torch.bool)
    colours = torch.rand(count, 3, generator=generator) * 4 - 2
    for i in range(count):
        y = int(torch.randint(1, 16, (), generator=generator))
        x = int(torch.randint(1, 9, (), generator=generator))
        masks[i, y : y + 7, x : x + 7] = True
        images[i][:, masks[i]] = colours[i][:, None]
    return images, masks


def test_its_heads_are_one_head_over_the_stacked_upsampled_features() -> None:
    """Each resolution's 1x1 head, upsampled and summed, equals one 1x1 head (their weights
    stacked) over the three feature maps upsampled to full resolution and stacked: the cheap
    form computes the same function as the plain one."""
    torch.manual_seed(0)
    net = ShapePresence().eval()
    images = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        full = net.full_res(images)
        half = net.half_res(full)
        quarter = net.quarter_res(half)
        stacked = torch.cat(
            [full] + [F.interpolate(x, size=(48, 64), mode="bilinear") for x in (half, quarter)],
            dim=1,
        )
        weight = torch.cat([head.weight for head in net.heads], dim=1)
        expected = F.conv2d(stacked, weight, net.heads[0].bias)[:, 0]
        torch.testing.assert_close(net(images), expected, rtol=1e-4, atol=1e-4)


def test_it_learns_where_the_masks_are_and_scores_shape_free_images_lower() -> None:
    """Trained on squares that sit in the left half only, with its mirror jitter: the mirror
    must flip image and mask together for it to find squares mirrored to the right half, and
    for images of noise alone to score below every image with a square."""
    torch.manual_seed(0)
    images, masks = _squares_on_noise(32, seed=1)
    net = ShapePresence()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        optimizer.zero_grad()
        net.loss(images, masks, generator).backward()
        optimizer.step()
    net.eval()
    test_images, test_masks = _squares_on_noise(16, seed=2)
    test_images, test_masks = test_images.flip(-1), test_masks.flip(-1)  # squares on the right
    with torch.no_grad():
        found = torch.sigmoid(net(test_images)) > 0.5
        with_square = net.score(test_images)
        noise_only = net.score(torch.randn(16, 3, 24, 32) * 0.5)
    iou = (found & test_masks).sum() / (found | test_masks).sum()
    assert iou > 0.6
    assert noise_only.max() < with_square.min()


def test_the_score_is_the_mean_of_the_most_confident_pixels() -> None:
    net = ShapePresence(top_pixels=5).eval()
    images = torch.randn(3, 3, 48, 64)
    with torch.no_grad():
        probabilities = torch.sigmoid(net(images)).flatten(1)
        ranked = probabilities.sort(dim=1, descending=True).values
        expected = torch.stack([row[:5].mean() for row in ranked])
        torch.testing.assert_close(net.score(images), expected)


def test_class_maps_train_it_on_every_class_and_leave_ignored_pixels_out() -> None:
    """Index masks: any class is "a shape here"; 255 (ignored) pixels add nothing."""
    torch.manual_seed(0)
    net = ShapePresence()
    images = torch.randn(2, 3, 24, 32)
    maps = torch.zeros(2, 24, 32, dtype=torch.uint8)
    maps[:, 4:10, 4:12], maps[:, 12:20, 16:30] = 1, 3

    def loss(masks: torch.Tensor) -> torch.Tensor:
        return net.loss(images, masks, torch.Generator().manual_seed(0))

    torch.testing.assert_close(loss(maps), loss(maps > 0))
    assert loss(torch.full_like(maps, 255)) == 0
