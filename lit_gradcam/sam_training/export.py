"""Export a `SamTuner` checkpoint to the official SAM format: a plain `Sam` state dict.

    python -m lit_gradcam.sam_training.export checkpoints/sam_vit_b_finetune/last.ckpt out.pth

The weights are first loaded, strictly, into the checkpoint's own architecture (its
`model_type` hyper-parameter), so a file that would not load is never written. The result loads
with `sam_model_registry[model_type](checkpoint=out.pth)` (official types) and with
`SamSegmenter(model_type=..., checkpoint="out.pth")`. An existing output is replaced only
with `--overwrite`, and the file is written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import argparse
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

from lit_gradcam.errors import UserError, file_in_the_way
from lit_gradcam.segmenters.sam_models import sam_registry, sam_state_dict


class ExportError(UserError, ValueError):
    """The checkpoint cannot be exported, or the output may not be written; says why."""


def export_sam(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str], overwrite: bool = False
) -> tuple[str, Path]:
    """Write the SAM weights of the Lightning `checkpoint` to `output`; (model_type, output)."""
    output = Path(output)
    if output.exists() and not (overwrite and output.is_file()):
        raise ExportError(
            f"{output} already exists: pass --overwrite to replace it, or choose another output"
            if output.is_file()
            else f"{output} is a folder; expected the path of the .pth file to write"
        )
    if above := file_in_the_way(output.parent):
        raise ExportError(f"{output} lies under {above}, which is a file")
    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as err:
        raise ExportError(f"{checkpoint} cannot be read as a checkpoint: {err}") from err
    try:
        model_type = loaded["hyper_parameters"]["model_type"]
    except (KeyError, TypeError) as err:
        raise ExportError(f"{checkpoint} is not a SamTuner checkpoint (no model_type)") from err
    sam = sam_registry()[model_type]()
    sam.load_state_dict(sam_state_dict(loaded))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    try:
        torch.save(sam.state_dict(), partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return model_type, output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a SamTuner Lightning checkpoint (.ckpt)")
    parser.add_argument("output", help="where to write the plain SAM state dict (.pth)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args(argv)
    try:
        model_type, output = export_sam(args.checkpoint, args.output, args.overwrite)
    except ExportError as err:
        parser.error(str(err))
    except OSError as err:  # a folder for the output that cannot be made or written
        parser.error(f"cannot write {args.output}: {err}")
    print(f"wrote {model_type} weights to {output}")


if __name__ == "__main__":
    main()
