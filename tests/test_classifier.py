"""ShapeClassifier: learns, reports its metrics, and fails clearly on bad weight names."""

import logging

import pytest
import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.augmentation import TrainAugmentation
from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.models import WeightsUnavailableError, build_resnet


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


def test_masks_train_the_presence_net_and_never_reach_the_resnet() -> None:
    """The classifier learns from labels only: its ResNet's gradients are the same whatever the
    masks, while those of the presence net (the no-shape flag's own segmenter) follow them."""
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
    resnet = [name for name in gradients[0] if name.startswith("model.")]
    presence = [name for name in gradients[0] if name.startswith("presence.")]
    assert resnet and presence and len(resnet) + len(presence) == len(gradients[0])
    assert all(torch.equal(gradients[0][name], gradients[1][name]) for name in resnet)
    assert not all(torch.equal(gradients[0][name], gradients[1][name]) for name in presence)


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


def test_head_matches_num_classes() -> None:
    model = ShapeClassifier(num_classes=7, arch="resnet34")
    assert model(torch.randn(2, 3, 48, 64)).shape == (2, 7)


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


def test_the_checkpoint_keeps_the_training_size_and_the_no_shape_threshold(
    tmp_path, make_trainer
) -> None:
    """After fit, the checkpoint holds the training images' size and the no-shape threshold:
    the `no_shape_quantile` of the validation images' presence scores, computed here by hand
    (the presence net's pixel probabilities, ranked, the mean of the `top_pixels` highest)."""
    torch.manual_seed(0)
    images, labels = torch.randn(12, 3, 40, 56), torch.arange(12) % 5
    masks = torch.zeros(12, 40, 56, dtype=torch.bool)
    masks[:, 10:20, 15:30] = True
    model = ShapeClassifier(augmentation=None, no_shape_quantile=0.25)
    assert model.input_size.tolist() == [0, 0] and not model.no_shape(images[:3]).any()
    trainer = make_trainer(max_epochs=1, limit_val_batches=1.0)
    batches = DataLoader(TensorDataset(images, labels, masks), batch_size=4)
    trainer.fit(model, train_dataloaders=batches, val_dataloaders=batches)
    model.eval()
    with torch.no_grad():
        ranked = torch.sigmoid(model.presence(images)).flatten(1).sort(1, descending=True)
    scores = ranked.values[:, : model.presence.top_pixels].mean(dim=1)
    expected = torch.quantile(scores, 0.25)
    threshold = model.no_shape_presence_threshold
    torch.testing.assert_close(threshold, expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        assert model.no_shape(images).tolist() == (scores < threshold).tolist()
    checkpoint = tmp_path / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    loaded = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu")
    assert loaded.input_size.tolist() == [40, 56]
    torch.testing.assert_close(loaded.no_shape_presence_threshold, threshold)
    torch.testing.assert_close(loaded.presence.state_dict(), model.presence.state_dict())


def test_a_checkpoint_saved_before_the_size_and_the_presence_net_were_kept_still_loads(
    tmp_path,
) -> None:
    """Such a checkpoint (its threshold that of the classifier's energy, on another scale, and
    hyper-parameters since removed) loads with its ResNet and no flag."""
    checkpoint = tmp_path / "old.ckpt"
    model = ShapeClassifier(augmentation=None)
    state = {
        k: v
        for k, v in model.state_dict().items()
        if k not in ("input_size", "no_shape_presence_threshold") and not k.startswith("presence.")
    }
    state["no_shape_local_threshold"] = torch.tensor(5.0)
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": {**model.hparams, "no_shape_temperature": 4.0},
            "pytorch-lightning_version": "2.5.0",
        },
        checkpoint,
    )
    loaded = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu")
    assert loaded.input_size.tolist() == [0, 0]
    assert not loaded.no_shape(torch.randn(2, 3, 48, 64)).any()
    torch.testing.assert_close(loaded.model.state_dict(), model.model.state_dict())


def test_fewer_stages_end_the_network_at_the_last_stage_kept() -> None:
    """Three stages: layer4 is gone and the head reads layer3's pooled 256 channels, so the
    output is torchvision's own layer1-3 followed by that head."""
    torch.manual_seed(0)
    model = build_resnet("resnet18", 5, None, stages=3).eval()
    assert isinstance(model.layer4, torch.nn.Identity) and model.fc.in_features == 256
    assert not any(key.startswith("layer4.") for key in model.state_dict())
    reference = torchvision.models.resnet18().eval()
    kept = {key: value for key, value in model.state_dict().items() if not key.startswith("fc.")}
    missing, _ = reference.load_state_dict(kept, strict=False)
    assert all(key.startswith(("layer4.", "fc.")) for key in missing)
    images = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        stem = reference.maxpool(reference.relu(reference.bn1(reference.conv1(images))))
        features = reference.layer3(reference.layer2(reference.layer1(stem)))
        expected = model.fc(features.mean(dim=(2, 3)))
        torch.testing.assert_close(model(images), expected)
    with pytest.raises(ValueError, match="model.stages must be 1 to 4, got 0"):
        build_resnet("resnet18", 5, None, stages=0)


def test_torchvision_weights_load_into_the_stages_kept(monkeypatch, tmp_path) -> None:
    """An ImageNet file in torch hub's cache (written here: nothing is downloaded) fills the
    stages a three-stage model keeps; its layer4 and head are dropped."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    enum = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cached = tmp_path / "hub" / "checkpoints" / enum.url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    torch.manual_seed(1)
    imagenet = torchvision.models.resnet18().state_dict()
    torch.save(imagenet, cached)
    model = build_resnet("resnet18", 5, "IMAGENET1K_V1", stages=3)
    for key, value in model.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(value, imagenet[key])


def test_a_checkpoint_of_other_stages_loads_as_it_was_saved(tmp_path, make_trainer, caplog) -> None:
    """A four-stage checkpoint (as every one saved before `stages` existed) validated by a
    three-stage model: the model rebuilds its backbone as the checkpoint has it and says so,
    and its outputs are the checkpoint's."""
    torch.manual_seed(0)
    saved = ShapeClassifier(augmentation=None).eval()
    checkpoint = tmp_path / "four.ckpt"
    hparams = {k: v for k, v in saved.hparams.items() if k != "stages"}
    state = {"state_dict": saved.state_dict(), "hyper_parameters": hparams}
    torch.save({**state, "pytorch-lightning_version": "2.5.0"}, checkpoint)
    images, labels = torch.randn(4, 3, 48, 64), torch.arange(4) % 5
    batches = _fixed_batches(images, labels, torch.zeros(4, 48, 64, dtype=torch.bool))
    model = ShapeClassifier(augmentation=None, stages=3)
    with caplog.at_level(logging.INFO):
        make_trainer(limit_val_batches=1.0).validate(model, batches, ckpt_path=checkpoint)
    assert "4 residual stages, the config's model.stages is 3" in caplog.text
    assert model.hparams.stages == 4 and model.model.fc.in_features == 512
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(images), saved(images))
