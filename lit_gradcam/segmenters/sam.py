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

import contextlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from lit_gradcam.errors import ConfigError
from lit_gradcam.prompt_types import PAD_LABEL, Prompts
from lit_gradcam.segmenters.base import Segmenter
from lit_gradcam.segmenters.mask_choice import DEFAULT_MASK_CHOICE, check_mask_choice, keep_mask
from lit_gradcam.segmenters.sam_models import build_sam, sam_registry

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: `multimask` settings: three candidates only for an ambiguous prompt, always, or never.
MULTIMASK_MODES = ("auto", "always", "never")
#: `autocast` settings: the image encoder's dtype under autocast.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


def check_sam_settings(encode_batch_size: int, multimask: str, autocast: str | None) -> None:
    """A `ConfigError` for a setting every SAM segmenter shares that is out of range."""
    if multimask not in MULTIMASK_MODES:
        raise ConfigError(f"multimask must be one of {MULTIMASK_MODES}, got {multimask!r}")
    if autocast is not None and autocast not in AUTOCAST_DTYPES:
        raise ConfigError(
            f"autocast must be None or one of {sorted(AUTOCAST_DTYPES)}, got {autocast!r}"
        )
    if encode_batch_size < 1:
        raise ConfigError(f"encode_batch_size must be >= 1, got {encode_batch_size}")


def encoder_autocast(
    autocast: str | None, device: torch.device
) -> contextlib.AbstractContextManager:
    """The image encoder's autocast context for an `autocast` setting (none for None)."""
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[autocast])


def wants_multimask(multimask: str, points: Tensor, boxes: Tensor | None) -> bool:
    """Whether a prompt set of `points` (G, N, 2) and `boxes` gets three candidates: always,
    never, or ("auto", SAM's advice) when it is ambiguous: at most one point and no box."""
    return multimask == "always" or (multimask == "auto" and points.shape[1] <= 1 and boxes is None)


class SamSegmenter(Segmenter):
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
        check_sam_settings(encode_batch_size, multimask, autocast)
        if model_type not in sam_registry():
            raise ConfigError(
                f"SAM model_type {model_type!r} is unknown; known: {sorted(sam_registry())}"
            )
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.encode_batch_size = encode_batch_size
        self.multimask = multimask
        self.autocast = autocast
        self.mask_choice = check_mask_choice(mask_choice)
        self.name = name
        self._sam: Sam | None = None

    @classmethod
    def from_model(cls, sam: Sam, **kwargs) -> SamSegmenter:
        """A segmenter around an already built `Sam` (no checkpoint is resolved)."""
        segmenter = cls(**kwargs)
        segmenter._sam = sam.eval()
        return segmenter

    @property
    def model(self) -> Sam:
        """The SAM model, built and loaded from the checkpoint on first access."""
        if self._sam is None:
            self._sam = build_sam(self.model_type, self.checkpoint)
        return self._sam

    def to(self, device: torch.device | str) -> SamSegmenter:
        self.model.to(device)
        return self

    @torch.inference_mode()
    def embed(self, images: Tensor) -> SamState:
        """Encode uint8 RGB images (B, 3, H, W): one image-encoder pass per image."""
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
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

    def predict(
        self, state: SamState, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Masks (B, H, W) bool and predicted IoU (B,) for each image's prompts; `heatmaps`
        (B, H, W) serve `mask_choice: cam`."""
        logits, scores = self.predict_logits(state, prompts, heatmaps)
        return logits > self.model.mask_threshold, scores

    @torch.inference_mode()
    def predict_logits(
        self, state: SamState, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Mask logits (B, H, W) float at the original size and predicted IoU (B,) of the
        candidate `mask_choice` keeps.

        Padding points are dropped, as `SamPredictor.predict` is given only real points: images
        with as many real points are decoded together, one decoder call per point count.
        """
        height, width = state.original_size
        batch = state.embeddings.shape[0]
        if prompts.batch_size != batch:
            raise ValueError(f"{prompts.batch_size} prompt sets for {batch} embedded images")
        prompts.validate(height, width)
        prompts = prompts.to("cpu")  # the transform maps coordinates in numpy, as the predictor
        sam = self.model
        logits = torch.empty(batch, height, width, device=sam.device)
        scores = torch.empty(batch, device=sam.device)
        real = prompts.labels != PAD_LABEL
        counts = real.sum(1)
        for n_points in counts.unique().tolist():
            group = (counts == n_points).nonzero()[:, 0]
            keep = real[group]
            group_logits, group_scores = self._decode_group(
                state,
                state.embeddings[group.to(state.embeddings.device)],
                prompts.points[group][keep].view(len(group), n_points, 2),
                prompts.labels[group][keep].view(len(group), n_points),
                None if prompts.boxes is None else prompts.boxes[group],
                None if heatmaps is None else heatmaps[group.to(heatmaps.device)],
            )
            # float32 out, as under mixed precision the decoder may run in a lower one
            logits[group.to(sam.device)] = group_logits.float()
            scores[group.to(sam.device)] = group_scores.float()
        return logits.to(state.device), scores.to(state.device)

    def _decode_group(
        self,
        state: SamState,
        embeddings: Tensor,
        points: Tensor,
        labels: Tensor,
        boxes: Tensor | None,
        heatmaps: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """(G, H, W) logits and (G,) IoU of the G images whose `embeddings` are given, each with
        the same number of points (prompts in original-image pixels)."""
        sam = self.model
        multimask = wants_multimask(self.multimask, points, boxes)
        low_res, iou = decode_prompts(
            sam, state.original_size, embeddings, points, labels, boxes, multimask
        )
        return keep_mask(
            low_res, iou, self.mask_choice, sam.mask_threshold,
            lambda logits: sam.postprocess_masks(logits, state.input_size, state.original_size),
            heatmaps,
        )  # fmt: skip
