"""`SamSegmenter`: Segment Anything behind the `Segmenter` seam, equal to `SamPredictor`.

`embed` runs the image encoder once per image, on the whole batch (in chunks), and keeps the
embeddings; `predict` runs the prompt encoder and mask decoder on them, so any number of prompt
sets cost no further encoder pass. Every step is segment_anything's own (`ResizeLongestSide`,
`Sam.preprocess`, the encoders, the decoder, `Sam.postprocess_masks`), as `SamPredictor.set_image`
+ `SamPredictor.predict` call them, so the masks are the predictor's. Decoding is batched across
images: the images that have the same number of points form one group, and each group is one
prompt-encoder call and one mask-decoder call vmapped over its images (`decode_masks`, which
training uses too). segment_anything is imported when the model is first needed, so a config
naming this class parses without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from lit_gradcam.errors import ConfigError
from lit_gradcam.segmenters.mask_choice import DEFAULT_MASK_CHOICE, keep_mask
from lit_gradcam.segmenters.sam_family import (
    SamFamilySegmenter,
    check_images,
    encoder_autocast,
    wants_multimask,
)
from lit_gradcam.segmenters.sam_models import build_sam, sam_registry

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


@dataclass
class SamState:
    """Image embeddings of a batch and the sizes needed to map masks back to the images.

    embeddings: (B, C, h, w) float32 on the model's device.
    input_size: (H', W') of the resized image inside SAM's square input.
    original_size: (H, W) of the images given to `embed`.
    device: where the images came from; masks and scores are returned there.
    """

    embeddings: Tensor
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    device: torch.device

    def __len__(self) -> int:
        return len(self.embeddings)


def resize_to_input(sam: Sam, images: Tensor) -> Tensor:
    """uint8 RGB (B, 3, H, W) -> uint8 (B, 3, H', W') on the model's device, longest side equal
    to the encoder's input size, resized as `SamPredictor.set_image` does."""
    from segment_anything.utils.transforms import ResizeLongestSide

    transform = ResizeLongestSide(sam.image_encoder.img_size)
    # ResizeLongestSide.apply_image (PIL) is the predictor's resize; a tensor resize differs.
    resized = np.stack(
        [transform.apply_image(image) for image in images.permute(0, 2, 3, 1).cpu().numpy()]
    )
    return torch.as_tensor(resized, device=sam.device).permute(0, 3, 1, 2).contiguous()


def decode_masks(
    sam: Sam,
    embeddings: Tensor,
    points: tuple[Tensor, Tensor] | None,
    boxes: Tensor | None,
    multimask: bool,
) -> tuple[Tensor, Tensor]:
    """Low-resolution mask logits (B, C, h, w) and predicted IoU (B, C) for B images at once.

    points: (B, N, 2) coordinates in the model's input frame and (B, N) int labels, the same N
        for every image; None for none.
    boxes: (B, 4) in the input frame, or None. C is 3 with `multimask`, else 1.

    The prompt encoder takes the whole batch; the mask decoder, which pairs one image with all
    its prompts, is vmapped so that each image meets only its own prompts, in one call.
    """
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=None)
    batch = embeddings.shape[0]
    if sparse.shape[0] != batch:  # no prompt at all: the encoder returns a batch of one
        sparse, dense = sparse.expand(batch, -1, -1), dense.expand(batch, -1, -1, -1)
    image_pe = sam.prompt_encoder.get_dense_pe()

    def decode_one(embedding: Tensor, sparse_one: Tensor, dense_one: Tensor) -> tuple[Tensor, ...]:
        low_res, iou = sam.mask_decoder(
            image_embeddings=embedding[None],
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_one[None],
            dense_prompt_embeddings=dense_one[None],
            multimask_output=multimask,
        )
        return low_res[0], iou[0]

    return torch.func.vmap(decode_one)(embeddings, sparse, dense)


def decode_prompts(
    sam: Sam,
    original_size: tuple[int, int],
    embeddings: Tensor,
    points: Tensor,
    labels: Tensor,
    boxes: Tensor | None,
    multimask: bool,
) -> tuple[Tensor, Tensor]:
    """`decode_masks` for prompts in original-image pixels: points (B, N, 2) with labels (B, N)
    (N may be 0) and boxes (B, 4) or None, mapped into the model's input frame in numpy, as
    `SamPredictor` maps them. The one prompt-to-decoder path of `SamSegmenter` and `SamTuner`."""
    from segment_anything.utils.transforms import ResizeLongestSide

    transform = ResizeLongestSide(sam.image_encoder.img_size)
    coords = None
    if points.shape[1]:
        xy = transform.apply_coords(points.detach().cpu().numpy(), original_size)
        coords = (
            torch.as_tensor(xy, dtype=torch.float, device=sam.device),
            labels.to(device=sam.device, dtype=torch.int),
        )
    if boxes is not None:
        box = transform.apply_boxes(boxes.detach().cpu().numpy(), original_size)
        boxes = torch.as_tensor(box, dtype=torch.float, device=sam.device)
    return decode_masks(sam, embeddings, coords, boxes, multimask)


class SamSegmenter(SamFamilySegmenter):
    """Segment Anything (official `segment_anything` package) as a promptable segmenter.

    model_type: "vit_b", "vit_l", "vit_h" (`sam_model_registry`) or "sam_tiny" (a small SAM
        trained here with `python main.py fit --config configs/sam_tiny.yaml`).
    checkpoint: path to the weights: a plain SAM state dict, or a Lightning checkpoint of
        `SamTuner`. None = the official file, from the cache or downloaded (see
        `checkpoints.resolve_checkpoint`). Either way its sha256 is checked once (a file named
        like an official one must be that file) and stamped beside it. Resolved when the model
        is first needed, so a config naming this class parses offline.
    encode_batch_size: images per image-encoder forward in `embed`.
    multimask: "auto" = three candidate masks, one kept by `mask_choice`, when the prompt is
        ambiguous (at most one point and no box), one mask otherwise (SAM's advice); "always"
        (three) / "never" (one).
    autocast: None, "bf16" or "fp16": autocast dtype of the image encoder (meant for CUDA);
        the embeddings are returned in float32 and the decoder always runs in float32.
    mask_choice: which of the three candidates to keep (`mask_choice.MASK_CHOICES`): "iou"
        (predicted IoU, as `SamPredictor`'s callers do), "largest", "stability" or "cam"
        (agreement with the heatmap the prompts came from).
    name: label in metric keys.
    """

    prompt_device = "cpu"  # the transform maps coordinates in numpy, as the predictor does

    def __init__(
        self,
        model_type: str = "vit_b",
        checkpoint: str | None = None,
        encode_batch_size: int = 8,
        multimask: str = "auto",
        autocast: str | None = None,
        mask_choice: str = DEFAULT_MASK_CHOICE,
        name: str = "sam",
    ) -> None:
        super().__init__(encode_batch_size, multimask, autocast, mask_choice, name)
        if model_type not in sam_registry():
            raise ConfigError(
                f"SAM model_type {model_type!r} is unknown; known: {sorted(sam_registry())}"
            )
        self.model_type = model_type
        self.checkpoint = checkpoint

    def _build(self) -> Sam:
        return build_sam(self.model_type, self.checkpoint)

    @property
    def mask_threshold(self) -> float:
        return self.model.mask_threshold

    @torch.inference_mode()
    def embed(self, images: Tensor) -> SamState:
        """Encode uint8 RGB images (B, 3, H, W): one image-encoder pass per image."""
        check_images(images)
        sam = self.model
        inputs = resize_to_input(sam, images)
        chunks = [self._encode(sam, chunk) for chunk in inputs.split(self.encode_batch_size, dim=0)]
        return SamState(
            embeddings=torch.cat(chunks),
            input_size=(inputs.shape[-2], inputs.shape[-1]),
            original_size=(images.shape[-2], images.shape[-1]),
            device=images.device,
        )

    def _encode(self, sam: Sam, images: Tensor) -> Tensor:
        with encoder_autocast(self.autocast, sam.device):
            return sam.image_encoder(sam.preprocess(images)).float()

    def select(self, state: SamState, index: Tensor) -> SamState:
        embeddings = state.embeddings[index.to(state.embeddings.device)]
        return replace(state, embeddings=embeddings)

    def _decode_group(
        self,
        state: SamState,
        points: Tensor,
        labels: Tensor,
        boxes: Tensor | None,
        heatmaps: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        sam = self.model
        multimask = wants_multimask(self.multimask, points, boxes)
        low_res, iou = decode_prompts(
            sam, state.original_size, state.embeddings, points, labels, boxes, multimask
        )
        return keep_mask(
            low_res, iou, self.mask_choice, sam.mask_threshold,
            lambda logits: sam.postprocess_masks(logits, state.input_size, state.original_size),
            heatmaps,
        )  # fmt: skip
