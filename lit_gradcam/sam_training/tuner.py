"""`SamTuner`: a LightningModule that trains a `segment_anything` `Sam` on (image, mask) batches.

Images come as uint8 pixels (`SceneDataModule`'s class-agnostic scenes) or ImageNet-normalised
(the shapes data module) and go through SAM's own preprocessing (`ResizeLongestSide`,
`Sam.preprocess`) exactly as `SamSegmenter` sees them at test time. Masks are one per image
(B, H, W) or one per object (B, K, H, W). Each batch is split among prompt modes; each image
gets a target (one of its objects, or for point prompts sometimes the background) and prompts
sampled from it (`prompts`); every mode group is decoded in one batched decoder call
(`segmenters.sam.decode_prompts`, the segmenter's own path), then optionally once more with a
correction click from the error region. Validation scores the model through `SamSegmenter` from
the ground-truth centroid point and box of each image's largest object. A frozen image
encoder's embeddings are computed once per image and reused (`cache`).
"""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor
from torchmetrics import MeanMetric

from lit_gradcam.errors import ConfigError, require_at_least, require_steps
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.base import PromptStrategy
from lit_gradcam.prompts.strategies import GroundTruthBox, GroundTruthCentroid
from lit_gradcam.sam_training.batches import object_masks, uint8_pixels
from lit_gradcam.sam_training.cache import EmbeddingCache
from lit_gradcam.sam_training.losses import LossTerms, mask_iou, sam_loss
from lit_gradcam.sam_training.prompts import (
    MODES,
    choose_targets,
    correction_clicks,
    largest_object,
    sample_prompts,
    split_modes,
)
from lit_gradcam.segmenters.sam import SamSegmenter, SamState, decode_prompts, resize_to_input
from lit_gradcam.segmenters.sam_models import build_sam

#: The parts of a `Sam` that can be trained, by attribute name.
PARTS = ("image_encoder", "prompt_encoder", "mask_decoder")
#: Default share of each prompt mode in a training batch.
DEFAULT_MIX = {
    "point": 0.4,
    "points": 0.1,
    "points_background": 0.2,
    "box": 0.15,
    "box_point": 0.15,
}
#: Validation prompts, by metric name: the pipeline's own oracles, the ground-truth centroid
#: point and the ground-truth box.
EVAL_ORACLES: dict[str, PromptStrategy] = {"point": GroundTruthCentroid(), "box": GroundTruthBox()}


class SamTuner(L.LightningModule):
    """Trains (all of, or parts of) a SAM on ground-truth masks with sampled prompts.

    model_type: "sam_tiny", "vit_b", "vit_l" or "vit_h".
    checkpoint: initial weights (plain SAM state dict or a SamTuner checkpoint); None = the
        official file where there is one (downloaded, sha256-checked), else random weights.
    trainable: which of image_encoder, prompt_encoder, mask_decoder learn; the others are
        frozen. A frozen image encoder's embeddings are cached (see `cache_embeddings`).
    lr, weight_decay: AdamW; warmup_steps: linear warm-up, then a cosine decay to zero over
        the trainer's step budget.
    prompt_mix: share of each prompt mode in a batch (keys from `prompts.MODES`).
    background_share: chance that an image prompted by one point alone gets that point on no
        object, within `background_band` pixels of one, and an empty target: a point that
        misses an object returns nothing, not the object beside it (SAM returns the backdrop
        there); 0 = every point on an object, as SAM's own training samples masks.
    background_band: how far (pixels) from an object such a point may land.
    max_points: most points of one kind in the multi-point modes.
    box_jitter, box_max_jitter: box noise std as a fraction of the box side, capped in pixels.
    correction: also train a second pass with one correction click from the first pass's error.
    focal_weight, dice_weight, iou_weight: loss weights (SAM 2's are 20 : 1 : 1).
    focal_alpha: the focal loss's foreground weight (SAM 2's 0.25; None = foreground and
        background alike).
    border_weight: extra focal weight of the pixels on the ground truth's border
        (`losses.border_band`: they count 1 + border_weight times; 0 = SAM's loss).
    cache_embeddings: reuse a frozen encoder's embeddings across epochs (kept on the CPU).

    Under DDP every trainable parameter must get a gradient at every step. That holds when
    prompt_mix has foreground and background points and boxes and each process's batch gives
    every mode an image (as the default and sam_tiny.yaml's mixes do from 4 images up); else
    use `strategy: ddp_find_unused_parameters_true`.
    """

    def __init__(
        self,
        model_type: str = "sam_tiny",
        checkpoint: str | None = None,
        trainable: list[str] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        prompt_mix: dict[str, float] | None = None,
        background_share: float = 0.0,
        background_band: int = 5,
        max_points: int = 3,
        box_jitter: float = 0.1,
        box_max_jitter: float = 20.0,
        correction: bool = True,
        focal_weight: float = 20.0,
        focal_alpha: float | None = 0.25,
        border_weight: float = 0.0,
        dice_weight: float = 1.0,
        iou_weight: float = 1.0,
        cache_embeddings: bool = True,
    ) -> None:
        super().__init__()
        trainable = list(PARTS) if trainable is None else list(trainable)
        prompt_mix = dict(DEFAULT_MIX) if prompt_mix is None else dict(prompt_mix)
        if unknown := sorted(set(trainable) - set(PARTS)):
            raise ConfigError(f"trainable parts must be among {PARTS}, got {unknown}")
        if not trainable:
            raise ConfigError(f"nothing to train: name at least one of {PARTS} in trainable")
        if unknown := sorted(set(prompt_mix) - set(MODES)):
            raise ConfigError(f"prompt_mix modes must be among {MODES}, got {unknown}")
        if sum(prompt_mix.values()) <= 0 or min(prompt_mix.values()) < 0:
            raise ConfigError(f"prompt_mix shares must be >= 0 and not all 0, got {prompt_mix}")
        if not 0 <= background_share <= 1:
            raise ConfigError(f"background_share must be in [0, 1], got {background_share}")
        if background_band < 1:
            raise ConfigError(f"background_band must be >= 1, got {background_band}")
        if max_points < 1:
            raise ConfigError(f"max_points must be >= 1, got {max_points}")
        if border_weight < 0:
            raise ConfigError(f"border_weight must be >= 0, got {border_weight}")
        if lr <= 0:
            raise ConfigError(f"model.lr must be > 0, got {lr}")
        require_at_least("model", 0, weight_decay=weight_decay, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        self.hparams.update(trainable=trainable, prompt_mix=prompt_mix)
        self.sam = build_sam(model_type, checkpoint, untrained=True)
        for part in PARTS:
            getattr(self.sam, part).requires_grad_(part in trainable)
        # No training prompt is a mask, so the mask-prompt encoder would get no gradient (and
        # DDP refuses trainable parameters that get none): it keeps the weights it has.
        self.sam.prompt_encoder.mask_downscaling.requires_grad_(False)
        self.encoder_frozen = "image_encoder" not in trainable
        self.train()  # Lightning keeps each submodule's mode as it finds it
        self.cache = EmbeddingCache() if self.encoder_frozen and cache_embeddings else None
        self.val_iou = torch.nn.ModuleDict({name: MeanMetric() for name in EVAL_ORACLES})
        self.test_iou = torch.nn.ModuleDict({name: MeanMetric() for name in EVAL_ORACLES})

    def train(self, mode: bool = True) -> SamTuner:
        """As `nn.Module.train`, but a frozen image encoder stays in eval mode: its batch norms
        (`sam_tiny`'s) keep their statistics, so its embeddings are the ones it is saved with
        and the cache of them stays valid (Lightning's loops restore each submodule's mode as
        they found it)."""
        super().train(mode)
        if self.encoder_frozen:
            self.sam.image_encoder.eval()
        return self

    # ----- embedding -----------------------------------------------------------------------
    def embed(self, pixels: Tensor) -> SamState:
        """SAM's state for uint8 images (B, 3, H, W): with gradients when the encoder trains,
        from the cache (or without gradients) when it is frozen."""
        from segment_anything.utils.transforms import ResizeLongestSide

        if not self.encoder_frozen:
            embeddings = self._encode(pixels)
        elif self.cache is not None:
            embeddings = self.cache.get(pixels, self._encode_frozen, self.device)
        else:
            embeddings = self._encode_frozen(pixels)
        height, width = pixels.shape[-2:]
        img_size = self.sam.image_encoder.img_size
        return SamState(
            embeddings=embeddings,
            input_size=ResizeLongestSide.get_preprocess_shape(height, width, img_size),
            original_size=(height, width),
            device=pixels.device,
        )

    def _encode(self, pixels: Tensor) -> Tensor:
        """SAM's own preprocessing (resize, normalise, pad) and the image encoder."""
        return self.sam.image_encoder(self.sam.preprocess(resize_to_input(self.sam, pixels)))

    @torch.no_grad()
    def _encode_frozen(self, pixels: Tensor) -> Tensor:
        return self._encode(pixels)

    # ----- training ------------------------------------------------------------------------
    def decode(
        self, state: SamState, index: Tensor, prompts: Prompts, multimask: bool
    ) -> tuple[Tensor, Tensor]:
        """Mask logits (G, C, H, W) at the original size and predicted IoU (G, C) for the
        images `index` of `state`, prompts in original-image pixels."""
        low_res, iou = decode_prompts(
            self.sam,
            state.original_size,
            state.embeddings[index],
            prompts.points,
            prompts.labels,
            prompts.boxes,
            multimask,
        )
        logits = self.sam.postprocess_masks(low_res, state.input_size, state.original_size)
        return logits, iou

    def _loss(self, logits: Tensor, iou: Tensor, masks: Tensor) -> LossTerms:
        hp = self.hparams
        return sam_loss(
            logits,
            iou,
            masks,
            hp.focal_weight,
            hp.dice_weight,
            hp.iou_weight,
            hp.focal_alpha,
            hp.border_weight,
        )

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, _, masks = batch
        objects = object_masks(masks)
        hp = self.hparams
        state = self.embed(uint8_pixels(images))
        passes: list[LossTerms] = []
        for mode, index in split_modes(len(objects), hp.prompt_mix, objects.device).items():
            share = hp.background_share if mode == "point" else 0.0
            group, region, _ = choose_targets(objects[index], share, hp.background_band)
            prompts = sample_prompts(region, mode, hp.max_points, hp.box_jitter, hp.box_max_jitter)
            first = self._loss(*self.decode(state, index, prompts, mode == "point"), group)
            passes.append(first)
            if hp.correction:
                prompts = correction_clicks(prompts, first.logits.detach() > 0, group)
                passes.append(self._loss(*self.decode(state, index, prompts, False), group))
        terms = {
            name: torch.cat([getattr(p, name) for p in passes]).mean()
            for name in ("total", "focal", "dice", "iou_mse", "iou")
        }
        self.log_dict(
            {f"train/{name}": value for name, value in terms.items() if name != "total"},
            batch_size=len(objects),
        )
        self.log("train/loss", terms["total"], prog_bar=True, batch_size=len(objects))
        return terms["total"]

    # ----- evaluation ----------------------------------------------------------------------
    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._score(batch, "val", self.val_iou)

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._score(batch, "test", self.test_iou)

    def _score(
        self, batch: tuple[Tensor, Tensor, Tensor], stage: str, metrics: torch.nn.ModuleDict
    ) -> None:
        """IoU of `SamSegmenter`'s masks from the ground-truth centroid point and box (of each
        image's largest object, where a batch holds several per image)."""
        images, _, masks = batch
        masks = largest_object(object_masks(masks))
        state = self.embed(uint8_pixels(images))
        segmenter = SamSegmenter.from_model(self.sam)
        for name, oracle in EVAL_ORACLES.items():
            # oracles read only the masks; the heatmap argument just names the device
            predicted, _ = segmenter.predict(state, oracle.prompts(masks.float(), masks))
            metrics[name].update(mask_iou(predicted, masks))
            self.log(f"{stage}/iou_{name}", metrics[name], prog_bar=True, batch_size=len(masks))

    # ----- optimisation --------------------------------------------------------------------
    def configure_optimizers(self) -> OptimizerLRScheduler:
        """AdamW on the trainable parts; linear warm-up, then cosine decay to 0 at the last step."""
        hp = self.hparams
        params = [p for p in self.sam.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        total = require_steps(self.trainer.estimated_stepping_batches)
        warmup = min(hp.warmup_steps, total)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
