"""Background exposure: shape-free training images and the loss that ranks them below shapes."""

import math

import torch

from lit_gradcam.background_exposure import BackgroundImages, ranking_loss
from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.imaging import IMAGENET_MEAN, IMAGENET_STD


def test_ranking_loss_is_the_mean_softplus_of_every_pair_gap() -> None:
    shapes, backgrounds = torch.tensor([3.0, -1.0]), torch.tensor([0.5, 2.0, -4.0])
    pairs = [(s, b) for s in shapes.tolist() for b in backgrounds.tolist()]
    expected = sum(math.log1p(math.exp((b - s) / 2.0)) for s, b in pairs) / len(pairs)
    assert math.isclose(ranking_loss(shapes, backgrounds, 2.0).item(), expected, rel_tol=1e-6)


def test_ranking_loss_pushes_shapes_up_and_backgrounds_down() -> None:
    shapes = torch.tensor([1.0, 2.0], requires_grad=True)
    backgrounds = torch.tensor([1.5, 0.0, 3.0], requires_grad=True)
    ranking_loss(shapes, backgrounds, 4.0).backward()
    assert (shapes.grad < 0).all() and (backgrounds.grad > 0).all()


def test_backgrounds_are_seeded_normalised_photos_at_the_asked_size() -> None:
    first = BackgroundImages(seed=7).draw(3, (40, 56), torch.device("cpu"))
    again = BackgroundImages(seed=7).draw(3, (40, 56), torch.device("cpu"))
    other = BackgroundImages(seed=8).draw(3, (40, 56), torch.device("cpu"))
    assert first.shape == (3, 3, 40, 56)
    assert torch.equal(first, again) and not torch.equal(first, other)
    pixels = (
        first * torch.tensor(IMAGENET_STD)[:, None, None]
        + torch.tensor(IMAGENET_MEAN)[:, None, None]
    )
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert pixels.std(dim=(2, 3)).min() > 0.01  # photos, not flat colour


def test_a_fit_adds_the_share_of_backgrounds_and_their_ranking_loss(make_trainer) -> None:
    """With background_exposure 0.5, each batch of 4 shape images is trained with 2 backgrounds,
    and the logged ranking loss is the one of those 6 images' shape scores."""
    torch.manual_seed(0)
    images, labels = torch.randn(4, 3, 48, 64), torch.arange(4)
    masks = torch.zeros(4, 48, 64, dtype=torch.bool)
    model = ShapeClassifier(augmentation=None, background_exposure=0.5, lr=1e-12)  # ~frozen
    seen = []
    model.model.layer4.register_forward_hook(lambda m, i, output: seen.append(output.detach()))
    batches = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, labels, masks), batch_size=4
    )
    trainer = make_trainer(max_steps=1)
    trainer.fit(model, train_dataloaders=batches)
    (features,) = seen
    assert len(features) == 6
    scores = model.local_shape_score(features)
    expected = ranking_loss(scores[:4], scores[4:], model.hparams.no_shape_temperature)
    logged = trainer.logged_metrics["train/background_loss"]
    torch.testing.assert_close(logged, expected, rtol=1e-4, atol=1e-4)


def test_no_exposure_trains_on_the_batch_alone(make_trainer) -> None:
    images, labels = torch.randn(4, 3, 48, 64), torch.arange(4)
    masks = torch.zeros(4, 48, 64, dtype=torch.bool)
    model = ShapeClassifier(augmentation=None, background_exposure=0.0)
    seen = []
    model.model.layer4.register_forward_hook(lambda m, i, output: seen.append(len(output)))
    batches = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, labels, masks), batch_size=4
    )
    trainer = make_trainer(max_steps=1)
    trainer.fit(model, train_dataloaders=batches)
    assert seen == [4] and "train/background_loss" not in trainer.logged_metrics
