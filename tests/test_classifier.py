"""ShapeClassifier: learns, reports its metrics, and fails clearly on bad weight names."""

import pytest
import torch

from lit_gradcam.classifier import ShapeClassifier, WeightsUnavailableError, build_resnet


def test_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = ShapeClassifier(num_classes=5, one_cycle=False, hflip=False, lr=1e-3)
    images = torch.randn(10, 3, 48, 64)
    labels = torch.arange(10) % 5
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model(images).argmax(1)
    assert loss.item() < 0.05
    assert torch.equal(predictions, labels)


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
    with pytest.raises(WeightsUnavailableError, match="weights: null"):
        build_resnet("resnet18", 5, "IMAGENET1K_V1")
