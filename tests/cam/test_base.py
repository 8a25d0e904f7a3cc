"""`BaseCAM`'s contract: hooks, model state, gradient contexts, layer names, degenerate maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_gradcam.cam import GradCAM, GradCAMPlusPlus, LayerCAM


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_no_hook_outlives_a_call_or_the_with_block(resnet, images) -> None:
    with GradCAM(resnet, ["layer3.1", "layer2.1"]) as cam:
        cam(images)
        assert _hook_count(resnet) == 0
    assert _hook_count(resnet) == 0
    with pytest.raises(RuntimeError, match="closed"):
        cam(images)


def test_hooks_are_removed_when_the_forward_fails(resnet) -> None:
    with pytest.raises(RuntimeError):
        GradCAM(resnet, ["layer2.1"]).heatmaps(torch.randn(2, 5, 48, 64))
    assert _hook_count(resnet) == 0


def test_model_state_is_restored_and_no_grad_is_left(resnet, images) -> None:
    resnet.train()
    resnet.layer1.eval()
    resnet.conv1.weight.requires_grad_(False)
    running_mean = resnet.bn1.running_mean.clone()
    try:
        expected = GradCAM(resnet, ["layer2.1"]).heatmaps(images)  # runs in eval mode
        modes = {name: m.training for name, m in resnet.named_modules()}
        assert not modes["layer1"] and not modes["layer1.0"] and modes["layer2"] and modes[""]
        assert not resnet.conv1.weight.requires_grad
        assert all(p.requires_grad for n, p in resnet.named_parameters() if n != "conv1.weight")
        assert all(p.grad is None for p in resnet.parameters())
        torch.testing.assert_close(resnet.bn1.running_mean, running_mean)
    finally:
        resnet.eval()
        resnet.conv1.weight.requires_grad_(True)
    torch.testing.assert_close(GradCAM(resnet, ["layer2.1"]).heatmaps(images), expected)


def test_works_under_no_grad_and_on_inference_tensors(resnet, images) -> None:
    cam = GradCAM(resnet, ["layer2.1"])
    expected = cam.heatmaps(images)
    with torch.no_grad():
        torch.testing.assert_close(cam.heatmaps(images), expected)
    with torch.inference_mode():
        frozen = images.clone()
    torch.testing.assert_close(cam.heatmaps(frozen), expected)


def test_inference_mode_is_refused_with_advice(resnet, images) -> None:
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode=False"):
        GradCAM(resnet, ["layer2.1"]).heatmaps(images)


def test_logits_are_those_of_the_forward(resnet, images) -> None:
    maps, logits = GradCAM(resnet, ["layer2.1"]).heatmaps(images, return_logits=True)
    with torch.no_grad():
        torch.testing.assert_close(logits, resnet(images))
    assert maps.shape == (6, 48, 64) and not maps.requires_grad and not logits.requires_grad


def test_layers_by_module_or_dotted_name_agree(resnet, images) -> None:
    by_name = GradCAM(resnet, "layer2.1").heatmaps(images)
    torch.testing.assert_close(GradCAM(resnet, [resnet.layer2[1]]).heatmaps(images), by_name)


def test_bad_layers_and_targets_are_named(resnet, images) -> None:
    with pytest.raises(ValueError, match=r"'layer2\.7'.*layer2\.1"):
        GradCAM(resnet, ["layer2.7"])
    with pytest.raises(ValueError, match="not a module of the model"):
        GradCAM(resnet, [nn.Conv2d(3, 3, 1)])
    with pytest.raises(ValueError, match="at least one layer"):
        GradCAM(resnet, [])
    cam = GradCAM(resnet, ["layer2.1"])
    with pytest.raises(ValueError, match="got 2 targets for 6 images"):
        cam(images, [0, 1])
    with pytest.raises(ValueError, match=r"class ids in \[0, 5\)"):
        cam(images, [0, 1, 2, 3, 4, 5])


def _inplace_relu_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()


def test_an_inplace_op_after_the_layer_does_not_alter_its_activation() -> None:
    net = _inplace_relu_net()
    image = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        conv = net[0](image)[0]  # (4, 8, 8), with negative values the ReLU would zero
    # d logit_0 / d conv_k(i, j) = W[0, k] / 64 where conv_k(i, j) > 0, else 0.
    grads = net[4].weight[0, :, None, None].detach() / 64 * (conv > 0)
    raw = (grads.mean((1, 2))[:, None, None] * conv).sum(0).clamp_min(0)
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    maps = GradCAM(net, ["0"]).heatmaps(image, [0])  # 8 x 8 map on an 8 x 8 image
    torch.testing.assert_close(maps[0], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", [GradCAM, GradCAMPlusPlus, LayerCAM])
def test_an_all_zero_layer_gives_zeros_not_nan(method) -> None:
    net = _inplace_relu_net()
    with torch.no_grad():
        net[0].bias.fill_(-1e3)  # every activation after the ReLU is zero
    maps = method(net, ["1"]).heatmaps(torch.randn(2, 3, 8, 8))
    assert torch.equal(maps, torch.zeros_like(maps))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(resnet, images) -> None:
    expected = GradCAM(resnet, ["layer3.1", "layer2.1"]).heatmaps(images)
    model = resnet.to("cuda")
    try:
        maps = GradCAM(model, ["layer3.1", "layer2.1"]).heatmaps(images)
    finally:
        resnet.to("cpu")
    assert maps.device.type == "cuda"
    torch.testing.assert_close(maps.cpu(), expected, atol=1e-3, rtol=0)
