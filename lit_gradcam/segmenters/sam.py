"""`SamSegmenter`: Segment Anything behind the `Segmenter` seam, equal to `SamPredictor`.

`embed` runs the image encoder once per image, on the whole batch (in chunks), and keeps the
embeddings; `predict` runs the prompt encoder and mask decoder per image on them, so any number
of prompt sets cost no further encoder pass. Every step is segment_anything's own
(`ResizeLongestSide`, `Sam.preprocess`, the encoders, the decoder, `Sam.postprocess_masks`),
called in the order `SamPredictor.set_image` + `SamPredictor.predict` call them, so the masks are
the predictor's, mask for mask. segment_anything is imported when the model is first needed,
so a config naming this class parses without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from lit_gradcam.segmenters.base import Prompts, Segmenter
from lit_gradcam.segmenters.checkpoints import load_sam, resolve_checkpoint

if TYPE_CHECKING:
    from segment_anything.modeling import Sam
    from segment_anything.utils.transforms import ResizeLongestSide

_MULTIMASK = ("auto", "always", "never")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


class SamSegmenter(Segmenter):
    """Segment Anything (official `segment_anything` package) as a promptable segmenter.

    model_type: `sam_model_registry` key: "vit_b", "vit_l" or "vit_h".
    checkpoint: path to the weights; None = the official file, from the cache or downloaded
        (see `checkpoints.resolve_checkpoint`). Either way its sha256 is checked once (a file
        named like an official one must be that file) and stamped beside it. Resolved when the
        model is first needed, so a config naming this class parses offline.
    encode_batch_size: images per image-encoder forward in `embed`.
    multimask: "auto" = three candidate masks, keeping the best predicted IoU, when the prompt is
        ambiguous (at most one point and no box), one mask otherwise (SAM's advice); "always"
        (best of three) / "never".
    autocast: None, "bf16" or "fp16": autocast dtype of the image encoder (meant for CUDA);
        the embeddings are returned in float32 and the decoder always runs in float32.
    name: label in metric keys.
    """

    def __init__(
        self,
        model_type: str = "vit_b",
        checkpoint: str | None = None,
        encode_batch_size: int = 8,
        multimask: str = "auto",
        autocast: str | None = None,
        name: str = "sam",
    ) -> None:
        if multimask not in _MULTIMASK:
            raise ValueError(f"multimask must be one of {_MULTIMASK}, got {multimask!r}")
        if autocast is not None and autocast not in _AUTOCAST:
            raise ValueError(
                f"autocast must be None or one of {sorted(_AUTOCAST)}, got {autocast!r}"
            )
        if encode_batch_size < 1:
            raise ValueError(f"encode_batch_size must be >= 1, got {encode_batch_size}")
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.encode_batch_size = encode_batch_size
        self.multimask = multimask
        self.autocast = autocast
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
            path = resolve_checkpoint(self.model_type, self.checkpoint)
            self._sam = load_sam(self.model_type, path)
        return self._sam

    @property
    def _transform(self) -> ResizeLongestSide:
        from segment_anything.utils.transforms import ResizeLongestSide

        return ResizeLongestSide(self.model.image_encoder.img_size)

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
        transform = self._transform
        # ResizeLongestSide.apply_image (PIL) is the predictor's resize; a tensor resize differs.
        resized = np.stack(
            [transform.apply_image(image) for image in images.permute(0, 2, 3, 1).cpu().numpy()]
        )
        inputs = torch.as_tensor(resized, device=sam.device).permute(0, 3, 1, 2).contiguous()
        chunks = [self._encode(sam, chunk) for chunk in inputs.split(self.encode_batch_size, dim=0)]
        return SamState(
            embeddings=torch.cat(chunks),
            input_size=(inputs.shape[-2], inputs.shape[-1]),
            original_size=(images.shape[-2], images.shape[-1]),
            device=images.device,
        )

    def _encode(self, sam: Sam, images: Tensor) -> Tensor:
        with self._autocast(sam.device):
            return sam.image_encoder(sam.preprocess(images)).float()

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=_AUTOCAST[self.autocast])

    def predict(self, state: SamState, prompts: Prompts) -> tuple[Tensor, Tensor]:
        """Masks (B, H, W) bool and predicted IoU (B,) for each image's prompts."""
        logits, scores = self.predict_logits(state, prompts)
        return logits > self.model.mask_threshold, scores

    @torch.inference_mode()
    def predict_logits(self, state: SamState, prompts: Prompts) -> tuple[Tensor, Tensor]:
        """Mask logits (B, H, W) float at the original size and predicted IoU (B,).

        Padding points are dropped, as `SamPredictor.predict` is given only real points.
        """
        height, width = state.original_size
        if prompts.batch_size != state.embeddings.shape[0]:
            raise ValueError(
                f"{prompts.batch_size} prompt sets for {state.embeddings.shape[0]} embedded images"
            )
        prompts.validate(height, width)
        logits, scores = zip(*self._decode_each(state, prompts), strict=True)
        return torch.cat(logits).to(state.device), torch.cat(scores).to(state.device)

    def _decode_each(self, state: SamState, prompts: Prompts) -> Iterator[tuple[Tensor, Tensor]]:
        """(1, H, W) logits and (1,) IoU per image, as `SamPredictor.predict` computes them."""
        sam = self.model
        transform = self._transform
        image_pe = sam.prompt_encoder.get_dense_pe()
        prompts = prompts.to("cpu")  # the transform maps coordinates in numpy, as the predictor
        for index in range(prompts.batch_size):
            single = prompts.select(index)
            n_points = single.points.shape[1]
            points = None
            if n_points:
                coords = transform.apply_coords(single.points[0].numpy(), state.original_size)
                points = (
                    torch.as_tensor(coords, dtype=torch.float, device=sam.device)[None],
                    single.labels.to(device=sam.device, dtype=torch.int),
                )
            boxes = None
            if single.boxes is not None:
                box = transform.apply_boxes(single.boxes.numpy(), state.original_size)
                boxes = torch.as_tensor(box, dtype=torch.float, device=sam.device)
            multimask = self.multimask == "always" or (
                self.multimask == "auto" and n_points <= 1 and boxes is None
            )
            sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=None)
            low_res, iou = sam.mask_decoder(
                image_embeddings=state.embeddings[index : index + 1],
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
            best = iou[0].argmax()
            masks = sam.postprocess_masks(
                low_res[:, best][:, None], state.input_size, state.original_size
            )
            yield masks[:, 0], iou[:, best]
