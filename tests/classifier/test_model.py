"""ShapeClassifier: learns, reports its metrics, and fails clearly on bad weight names."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.augmentation import TrainAugmentation
from lit_gradcam.classifier.backbones import WeightsUnavailableError, build_resnet


def _fixed_batches(images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor):
    return DataLoader(TensorDataset(images, labels, masks), batch_size=len(images))


def test_fit_memorises_a_batch_through_training_step_and_schedule(make_trainer) -> None:
    """Lightning's own loop (training_step, AdamW, one-cycle schedule) drives the loss down."""
    torch.manual_seed(0)
    images = torch.randn(10, 3, 48, 64)
    labels = torch.arange(10) % 5
    masks = torch.zeros(10, 48, 64, dtype=torch.bool)
    model = ShapeClassifier(lr=3e-3, augmentation=None)
    trainer = make_trainer(max_steps=60)
    trainer.fit(model, train_dataloaders=_fixed_batches(images, labels, masks))
    assert trainer.global_step == 60
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    assert scheduler.total_steps == 60  # the schedule spans the run, counted in steps
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(images).argmax(1), labels)


class _Spy(TrainAugmentation):
    """Records what it is given (images and strength) and returns the images unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.strengths: list[float] = []

    def __call__(self, images: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        self.seen.append(images)
        self.strengths.append(strength)
        return images


def test_masks_never_reach_the_resnet_and_it_is_the_only_network() -> None:
    """The classifier learns from labels only: its gradients are the same whatever the masks,
    and every parameter it trains is the ResNet's (the no-shape flag's net is a callback's)."""
    images = torch.randn(4, 3, 48, 64)
    labels = torch.tensor([0, 1, 2, 3])
    spy = _Spy()
    gradients = []
    for masks in (
        torch.zeros(4, 48, 64, dtype=torch.bool),
        torch.ones(4, 48, 64, dtype=torch.bool),
    ):
        torch.manual_seed(0)
        model = ShapeClassifier(augmentation=spy)
        model.training_step((images, labels, masks), 0).backward()
        gradients.append({name: p.grad for name, p in model.named_parameters()})
    assert len(spy.seen) == 2 and torch.equal(spy.seen[0], images)
    assert gradients[0] and all(name.startswith("model.") for name in gradients[0])
    assert all(torch.equal(gradients[0][name], gradients[1][name]) for name in gradients[0])


def test_forward_is_torchvisions() -> None:
    """The logits are torchvision's ResNet forward of the backbone, in either memory layout."""
    torch.manual_seed(0)
    model = ShapeClassifier(stages=3).eval()
    images = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        expected = model.model(images)
        torch.testing.assert_close(model(images), expected)
        model._channels_last = True
        model._apply_memory_format()
        torch.testing.assert_close(model(images), expected, rtol=1e-4, atol=1e-4)


def test_augmentation_ramps_from_mirror_only_to_full_strength_over_the_run(make_trainer) -> None:
    """With a ramp over the middle half of an 8-step run, the strength is 0 up to step 2,
    rises linearly, and is 1 from step 6 on."""
    torch.manual_seed(0)
    spy = _Spy()
    model = ShapeClassifier(augmentation=spy, augmentation_ramp=(0.25, 0.75))
    batches = _fixed_batches(
        torch.randn(4, 3, 48, 64), torch.arange(4), torch.zeros(4, 48, 64, dtype=torch.bool)
    )
    trainer = make_trainer(max_steps=8)
    trainer.fit(model, train_dataloaders=batches)
    assert spy.strengths == pytest.approx([0, 0, 0, 0.25, 0.5, 0.75, 1, 1])


@pytest.mark.parametrize("ramp", [(0.5, 0.25), (-0.1, 0.5), (0.2, 1.5)])
def test_an_augmentation_ramp_out_of_order_is_refused(ramp: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="augmentation_ramp"):
        ShapeClassifier(augmentation_ramp=ramp)


def test_default_augmentation_is_on_and_can_be_switched_off() -> None:
    assert isinstance(ShapeClassifier().augmentation, TrainAugmentation)
    assert ShapeClassifier(augmentation=None).augmentation is None


def test_head_matches_the_classes() -> None:
    names = [f"class{i}" for i in range(7)]
    model = ShapeClassifier(classes=names, arch="resnet34")
    assert model(torch.randn(2, 3, 48, 64)).shape == (2, 7)
    assert model.class_names == tuple(names)
    assert ShapeClassifier().class_names == ("circle", "square", "triangle", "star", "diamond")


def test_unknown_arch_and_weight_names_are_clear() -> None:
    with pytest.raises(ValueError, match="model.arch must be one of"):
        build_resnet("vgg11", 5, None)
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        build_resnet("resnet18", 5, "IMAGENET_BEST")


def test_weights_download_failure_says_what_to_do(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match="`model.weights: shapes` .* or `null`"):
        build_resnet("resnet18", 5, "IMAGENET1K_V1")


def test_the_checkpoint_keeps_the_training_size(tmp_path, make_trainer) -> None:
    torch.manual_seed(0)
    images, labels = torch.randn(12, 3, 40, 56), torch.arange(12) % 5
    masks = torch.zeros(12, 40, 56, dtype=torch.bool)
    model = ShapeClassifier(augmentation=None)
    assert model.input_size.tolist() == [0, 0]
    trainer = make_trainer(max_epochs=1)
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(images, labels, masks), 4))
    checkpoint = tmp_path / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    loaded = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu")
    assert loaded.input_size.tolist() == [40, 56]


def test_a_checkpoint_of_an_earlier_version_still_loads(tmp_path) -> None:
    """A checkpoint saved before the input size was kept, with the no-shape flag's net and
    thresholds inside the classifier (as earlier versions kept them) and hyper-parameters since
    removed, loads with its ResNet as saved."""
    checkpoint = tmp_path / "old.ckpt"
    model = ShapeClassifier(augmentation=None)
    state = {k: v for k, v in model.state_dict().items() if k != "input_size"}
    state["presence.head.weight"] = torch.randn(1, 128, 1, 1)
    state["no_shape_presence_threshold"] = torch.tensor(0.3)
    state["no_shape_local_threshold"] = torch.tensor(5.0)
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": {
                **model.hparams,
                "no_shape_temperature": 4.0,
                "no_shape_quantile": 0.01,
            },
            "pytorch-lightning_version": "2.5.0",
        },
        checkpoint,
    )
    loaded = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu")
    assert loaded.input_size.tolist() == [0, 0]
    torch.testing.assert_close(loaded.model.state_dict(), model.model.state_dict())
