"""Export a `SamTuner` checkpoint to the official SAM format: a plain `Sam` state dict.

    python -m lit_gradcam.sam_training.export checkpoints/sam_vit_b_finetune/last.ckpt out.pth

The weights are first loaded, strictly, into the checkpoint's own architecture (its
`model_type` hyper-parameter), so a file that would not load is never written. The result loads
with `sam_model_registry[model_type](checkpoint=out.pth)` (official types) and with
`SamSegmenter(model_type=..., checkpoint="out.pth")`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from lit_gradcam.segmenters.checkpoints import sam_registry, sam_state_dict


def export_sam(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str]
) -> tuple[str, Path]:
    """Write the SAM weights of the Lightning `checkpoint` to `output`; (model_type, output)."""
    loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    try:
        model_type = loaded["hyper_parameters"]["model_type"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{checkpoint} is not a SamTuner checkpoint (no model_type)") from err
    sam = sam_registry()[model_type]()
    sam.load_state_dict(sam_state_dict(loaded))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sam.state_dict(), output)
    return model_type, output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a SamTuner Lightning checkpoint (.ckpt)")
    parser.add_argument("output", help="where to write the plain SAM state dict (.pth)")
    args = parser.parse_args(argv)
    model_type, output = export_sam(args.checkpoint, args.output)
    print(f"wrote {model_type} weights to {output}")


if __name__ == "__main__":
    main()
