"""`Sam2Segmenter`: SAM 2.1 behind the `Segmenter` seam, equal to `SAM2ImagePredictor`.

`embed` runs the image encoder once per image and keeps the features the mask decoder reads (the
image embedding and the two high-resolution maps); `predict` runs the prompt encoder and mask
decoder on them, so any number of prompt sets cost no further encoder pass. Every step is sam2's
own, as `SAM2ImagePredictor.set_image_batch` + `predict` call them: `SAM2Transforms` (a resize to
the square input that does not keep the aspect ratio, then ImageNet normalisation),
`forward_image`, `_prepare_backbone_features`, `no_mem_embed`, the prompt mapping of
`_prep_prompts`, the box-as-two-points encoding and decoder call of `_predict`, and
`postprocess_masks`; so the masks are the predictor's. Decoding is batched across images as in
`SamSegmenter`: images with as many real points form one group, one decoder call each. sam2 is
imported when the model is first needed (`sam2_models`), so a config naming this class parses
without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lit_gradcam.segmenters.mask_choice import DEFAULT_MASK_CHOICE, keep_mask
from lit_gradcam.segmenters.sam2_models import build_sam2_model, check_model_type
from lit_gradcam.segmenters.sam_family import (
    SamFamilySegmenter,
    check_images,
    encoder_autocast,
    wants_multimask,
)

if TYPE_CHECKING:
    from sam2.modeling.sam2_base import SAM2Base
    from sam2.utils.transforms import SAM2Transforms

#: Logit above which a pixel is in the mask: `SAM2ImagePredictor`'s default `mask_threshold`.
MASK_THRESHOLD = 0.0
#: Point labels with which `SAM2ImagePredictor._predict` encodes a box's two corners.
_BOX_LABELS = (2, 3)


@dataclass
class Sam2State:
    """The decoder's image features of a batch, float32 on the model's device.

    image_embed: (B, C, 64, 64) the lowest-resolution map, `no_mem_embed` added.
    high_res_feats: the (B, C0, 256, 256) and (B, C1, 128, 128) maps the decoder upsamples with.
    original_size: (H, W) of the images given to `embed`.
    device: where the images came from; masks and scores are returned there.
    """

    image_embed: Tensor
    high_res_feats: tuple[Tensor, ...]
    original_size: tuple[int, int]
    device: torch.device

    def __len__(self) -> int:
        return len(self.image_embed)


class Sam2Segmenter(SamFamilySegmenter):
    """SAM 2.1 (the `sam2` package, images only) as a promptable segmenter.

    model_type: "hiera_t", "hiera_s", "hiera_b+" or "hiera_l" (sam2's configs/sam2.1/ files).
    checkpoint: path to a sam2 checkpoint ({"model": state_dict}, as the official files). None =
        the official file, from the cache or downloaded (see `checkpoints.resolve_checkpoint`).
        Either way its sha256 is checked once (a file named like an official one must be that
        file) and stamped beside it. Resolved when the model is first needed.
    encode_batch_size: images per image-encoder forward in `embed`.
    multimask: "auto" = three candidate masks, one kept by `mask_choice`, when the prompt is
        ambiguous (at most one point and no box), one mask otherwise; "always" / "never". With
        one mask, sam2's decoder falls back to the best of the three when that mask is unstable.
    autocast: None, "bf16" or "fp16": autocast dtype of the image encoder (meant for CUDA); the
        features are kept in float32 and the decoder runs in float32 unless the caller autocasts.
    mask_choice: which of the three candidates to keep (`mask_choice.MASK_CHOICES`); "iou" keeps
        the predictor's best.
    name: label in metric keys.
    """

    def __init__(
        self,
        model_type: str = "hiera_t",
        checkpoint: str | None = None,
        encode_batch_size: int = 8,
        multimask: str = "auto",
        autocast: str | None = None,
        mask_choice: str = DEFAULT_MASK_CHOICE,
        name: str = "sam2",
    ) -> None:
        super().__init__(encode_batch_size, multimask, autocast, mask_choice, name)
        self.model_type = check_model_type(model_type)
        self.checkpoint = checkpoint
        self._transforms: SAM2Transforms | None = None

    def _build(self) -> SAM2Base:
        return build_sam2_model(self.model_type, self.checkpoint)

    @property
    def mask_threshold(self) -> float:
        return MASK_THRESHOLD

    @property
    def transforms(self) -> SAM2Transforms:
        """sam2's transforms for this model, as `SAM2ImagePredictor` makes them."""
        if self._transforms is None:
            from sam2.utils.transforms import SAM2Transforms

            self._transforms = SAM2Transforms(
                resolution=self.model.image_size, mask_threshold=MASK_THRESHOLD
            )
        return self._transforms

    @torch.inference_mode()
    def embed(self, images: Tensor) -> Sam2State:
        """Encode uint8 RGB images (B, 3, H, W): one image-encoder pass per image."""
        check_images(images)
        chunks = [self._encode(chunk) for chunk in images.split(self.encode_batch_size, dim=0)]
        levels = [torch.cat(level) for level in zip(*chunks, strict=True)]
        return Sam2State(
            image_embed=levels[-1],
            high_res_feats=tuple(levels[:-1]),
            original_size=(images.shape[-2], images.shape[-1]),
            device=images.device,
        )

    def _encode(self, images: Tensor) -> list[Tensor]:
        """The decoder's feature maps, highest resolution first, as `set_image_batch` makes them:
        ToTensor's scaling and the transforms where the images are, then the model's device."""
        model = self.model
        inputs = self.transforms.transforms(images.float().div(255)).to(model.device)
        with encoder_autocast(self.autocast, model.device):
            backbone_out = model.forward_image(inputs)
            _, feats, _, sizes = model._prepare_backbone_features(backbone_out)
        if model.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + model.no_mem_embed
        batch = images.shape[0]
        return [
            feat.permute(1, 2, 0).view(batch, -1, *size).float()
            for feat, size in zip(feats, sizes, strict=True)
        ]

    def select(self, state: Sam2State, index: Tensor) -> Sam2State:
        index = index.to(state.image_embed.device)
        return replace(
            state,
            image_embed=state.image_embed[index],
            high_res_feats=tuple(feat[index] for feat in state.high_res_feats),
        )

    def _decode_group(
        self,
        state: Sam2State,
        points: Tensor,
        labels: Tensor,
        boxes: Tensor | None,
        heatmaps: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        multimask = wants_multimask(self.multimask, points, boxes)
        low_res, iou = self._decode(state, points, labels, boxes, multimask)
        return keep_mask(
            low_res, iou, self.mask_choice, MASK_THRESHOLD,
            lambda logits: self.transforms.postprocess_masks(logits, state.original_size),
            heatmaps,
        )  # fmt: skip

    def _decode(
        self,
        state: Sam2State,
        points: Tensor,
        labels: Tensor,
        boxes: Tensor | None,
        multimask: bool,
    ) -> tuple[Tensor, Tensor]:
        """Low-resolution logits (G, C, 256, 256) and predicted IoU (G, C), each image decoded
        with its own prompts in one call: `_prep_prompts` + `_predict` for G images at once."""
        model, transforms = self.model, self.transforms
        size = state.original_size
        coords = transforms.transform_coords(points.float(), normalize=True, orig_hw=size)
        labels = labels.int()
        if boxes is not None:  # a box is two points, labelled 2 and 3, before the others
            corners = transforms.transform_boxes(boxes.float(), normalize=True, orig_hw=size)
            corner_labels = labels.new_tensor(_BOX_LABELS).expand(len(corners), -1)
            coords = torch.cat([corners, coords], dim=1)
            labels = torch.cat([corner_labels, labels], dim=1)
        sparse, dense = model.sam_prompt_encoder(
            points=(coords, labels) if coords.shape[1] else None, boxes=None, masks=None
        )
        batch = state.image_embed.shape[0]
        if sparse.shape[0] != batch:  # no prompt at all: the encoder returns a batch of one
            sparse, dense = sparse.expand(batch, -1, -1), dense.expand(batch, -1, -1, -1)
        low_res, iou, _, _ = model.sam_mask_decoder(
            image_embeddings=state.image_embed,
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            repeat_image=False,
            high_res_features=list(state.high_res_feats),
        )
        return low_res, iou
