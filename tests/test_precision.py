"""The CLI's default precision: mixed where the hardware computes in bfloat16 natively."""

import pytest
import torch

from lit_gradcam.cli import cli_main
from lit_gradcam.precision import default_precision


@pytest.mark.parametrize(
    ("cuda", "cuda_bf16", "cpu_bf16", "expected"),
    [
        (True, True, False, "bf16-mixed"),
        (True, False, True, "16-mixed"),
        (False, False, True, "bf16-mixed"),
        (False, False, False, "32-true"),  # emulated bfloat16 would be slower than float32
    ],
)
def test_precision_follows_the_hardware(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, cuda_bf16: bool, cpu_bf16: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: cuda_bf16)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: cpu_bf16)
    assert default_precision() == expected


def test_the_cli_defaults_to_it_and_a_flag_overrides_it() -> None:
    assert cli_main([], run=False).config["trainer"]["precision"] == default_precision()
    chosen = cli_main(["--trainer.precision", "32-true"], run=False)
    assert chosen.config["trainer"]["precision"] == "32-true"
