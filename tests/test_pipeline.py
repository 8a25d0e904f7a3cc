"""The batch pipeline's sharing and bookkeeping, its ground-truth gate (only oracles see GT,
through the pipeline, the evaluation callback and predict), and the notebook-style pipeline."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.cam.gradcam import GradCAM
from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.backbones import build_resnet
from lit_gradcam.data.image_folder import ImageFolder, collate_images
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.imaging import IMAGENET_MEAN, IMAGENET_STD, denormalize_to_uint8
from lit_gradcam.method.pipeline import (
    DEFAULT_CAM,
    BatchPipeline,
    NoClickPipeline,
    default_strategies,
)
from lit_gradcam.method.results import StrategyResult, cat_prompts
from lit_gradcam.prediction.writer import MaskWriter
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.strategies import (
    CamConsensus,
    CenterPoint,
    GroundTruthCentroid,
    TopKForeground,
    WeightedCentroid,
)
from lit_gradcam.segmenters.base import Segmenter
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter


def _square_images(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images of a flat red square on a grey ramp, and the square's masks."""
    gen = torch.Generator().manual_seed(0)
    images = torch.linspace(0.3, 0.6, 64).expand(batch, 3, 48, 64).clone()
    images += 0.02 * torch.rand(batch, 3, 48, 64, generator=gen)
    masks = torch.zeros(batch, 48, 64, dtype=torch.bool)
    masks[:, 16:32, 20:36] = True
    red = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1)
    images = torch.where(masks[:, None], red, images)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std, masks


def test_pipeline_call_equals_its_parts_run_by_hand() -> None:
    torch.manual_seed(0)
    classifier = build_resnet("resnet18", 5, None).eval()
    images, _ = _square_images()
    cam = GradCAM(classifier, ["layer2.1"])
    strategy, segmenter = WeightedCentroid(), GrabCutSegmenter()
    masks = NoClickPipeline(cam, strategy, segmenter)(images)

    heatmaps = cam.heatmaps(images)
    prompts = strategy.prompts(heatmaps)
    by_hand, _ = segmenter.predict(segmenter.embed(denormalize_to_uint8(images)), prompts)
    assert masks.dtype == torch.bool and masks.shape == (2, 48, 64)
    assert torch.equal(masks, by_hand)


def test_segment_with_notebook_points_cuts_the_square() -> None:
    images, truth = _square_images()
    pipeline = NoClickPipeline(None, TopKForeground(), GrabCutSegmenter())
    masks = pipeline.segment(images, [[[27.0, 23.0]], [[27.0, 23.0]]], [[1], [1]])
    iou = (masks & truth).sum((1, 2)) / (masks | truth).sum((1, 2))
    assert (iou > 0.9).all()
    with pytest.raises(ValueError, match="labels"):
        pipeline.segment(images, [[[27.0, 23.0]], [[27.0, 23.0]]], [[1], [2]])


def test_strategies_sharing_a_cam_spec_share_one_cam_pass(monkeypatch) -> None:
    calls = []
    import lit_gradcam.method.pipeline as pipeline_module

    real = pipeline_module.compute_heatmaps

    def counting(model, images, spec, targets=None):
        calls.append(spec)
        return real(model, images, spec, targets)

    monkeypatch.setattr(pipeline_module, "compute_heatmaps", counting)
    pp = CamSpec(method="gradcam++")
    pipeline = BatchPipeline(
        [GrabCutSegmenter()],
        [TopKForeground(), WeightedCentroid(), WeightedCentroid(name="pp", cam=pp)],
        CamSpec(),
    )
    images, _ = _square_images()
    output = pipeline.run(build_resnet("resnet18", 5, None), images)
    assert calls == [CamSpec(), pp]
    assert set(output.results) == {
        "grabcut/TopKForeground",
        "grabcut/WeightedCentroid",
        "grabcut/pp",
    }


def test_results_carry_the_heatmap_prompts_of_strategies_that_consult_the_segmenter() -> None:
    torch.manual_seed(0)
    model = build_resnet("resnet18", 5, None).eval()
    consensus, centroid = CamConsensus(), WeightedCentroid()
    pipeline = BatchPipeline([GrabCutSegmenter()], [consensus, centroid], CamSpec())
    images, _ = _square_images()
    output = pipeline.run(model, images)
    mine = output.results["grabcut/CamConsensus"]
    assert torch.equal(mine.cam_prompts.points, consensus.prompts(mine.heatmaps).points)
    plain = output.results["grabcut/WeightedCentroid"]
    assert plain.cam_prompts is plain.prompts
    assert (consensus.consults_segmenter, centroid.consults_segmenter) == (True, False)
    both = StrategyResult.cat([mine.head(1), mine.to("cpu")])
    assert torch.equal(both.cam_prompts.points[1:], mine.cam_prompts.points)


def test_the_default_method_and_what_predict_runs_of_it() -> None:
    """Defaults: GrabCut, every default strategy on DEFAULT_CAM; predict runs CamConsensus, and
    CamConsensusPerObject for class maps.
    Given strategies, predict runs the one named, else the first that reads no ground truth."""
    method = BatchPipeline()
    assert [s.name for s in method.segmenters] == ["grabcut"]
    assert [s.name for s in method.strategies] == [s.name for s in default_strategies()]
    assert method.cam == DEFAULT_CAM
    (strategy,) = method.for_predict().strategies
    assert strategy.name == "CamConsensus"
    (strategy,) = method.for_predict(class_maps=True).strategies
    assert strategy.name == "CamConsensusPerObject"
    named = BatchPipeline(predict_strategy="CamConsensus")
    assert [s.name for s in named.for_predict(class_maps=True).strategies] == ["CamConsensus"]

    segmenters = [GrabCutSegmenter(), EmptySegmenter()]
    oracle_first = [GroundTruthCentroid(), CenterPoint(), WeightedCentroid()]
    predict = BatchPipeline(segmenters, oracle_first).for_predict()
    assert [s.name for s in predict.strategies] == ["CenterPoint"]
    assert [s.name for s in predict.segmenters] == ["grabcut"]
    named = BatchPipeline(segmenters, oracle_first, predict_strategy="WeightedCentroid")
    assert [s.name for s in named.for_predict().strategies] == ["WeightedCentroid"]
    for name, error in (("Nope", "not one of"), ("GroundTruthCentroid", "ground truth")):
        with pytest.raises(ValueError, match=error):
            BatchPipeline(segmenters, oracle_first, predict_strategy=name).for_predict()
    with pytest.raises(ValueError, match="only oracles"):
        BatchPipeline(segmenters, [GroundTruthCentroid()]).for_predict()


def test_originals_of_another_size_get_resized_heatmaps_prompts_and_masks() -> None:
    """Predict's path: the CAM at the classifier's size, everything else at the originals'."""
    torch.manual_seed(0)
    model = build_resnet("resnet18", 5, None).eval()
    images, _ = _square_images()
    originals = F.interpolate(denormalize_to_uint8(images).float(), scale_factor=2).byte()
    pipeline = BatchPipeline([EmptySegmenter()], [CenterPoint(), WeightedCentroid()], CamSpec())
    small = pipeline.run(model, images)
    large = pipeline.run(model, images, originals=originals)
    assert torch.equal(large.images_uint8, originals)
    assert torch.equal(large.logits, small.logits)
    for key, result in large.results.items():
        assert result.heatmaps.shape == result.masks.shape == (2, 96, 128)
        resized = F.interpolate(
            small.results[key].heatmaps[:, None], size=(96, 128), mode="bilinear"
        )
        assert torch.allclose(result.heatmaps, resized[:, 0].clamp(0, 1))
    assert large.results["empty/CenterPoint"].prompts.points.tolist() == [[[64.0, 48.0]]] * 2


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique names"):
        BatchPipeline([GrabCutSegmenter()], [TopKForeground(), TopKForeground()], CamSpec())


def test_cat_prompts_pads_with_the_padding_label() -> None:
    one = Prompts(torch.ones(1, 1, 2), torch.ones(1, 1, dtype=torch.long))
    two = Prompts(torch.zeros(1, 2, 2), torch.tensor([[1, 0]]))
    merged = cat_prompts([one, two])
    assert merged.points.shape == (2, 2, 2)
    assert merged.labels.tolist() == [[1, -1], [1, 0]]


class Spy(CenterPoint):
    """CenterPoint that records the ground truth every call received."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.received: list[torch.Tensor | None] = []

    def prompts(self, heatmaps: torch.Tensor, gt_masks: torch.Tensor | None = None) -> Prompts:
        self.received.append(gt_masks)
        return super().prompts(heatmaps, gt_masks)


class ConsultingSpy(Spy):
    """A spy that overrides `segment`, as strategies that consult the segmenter do."""

    def segment(
        self,
        heatmaps: torch.Tensor,
        segmenter: Segmenter,
        state: Any,
        gt_masks: torch.Tensor | None = None,
    ) -> tuple[Prompts, torch.Tensor, torch.Tensor]:
        self.received.append(gt_masks)
        return super().segment(heatmaps, segmenter, state, gt_masks)


class OracleSpy(Spy):
    uses_ground_truth = True


class EmptySegmenter(Segmenter):
    """Empty masks at the embedded images' size: cheap, and any size goes."""

    name = "empty"

    def embed(self, images: torch.Tensor) -> tuple[int, int, int]:
        return images.shape[0], *images.shape[-2:]

    def predict(
        self,
        state: tuple[int, int, int],
        prompts: Prompts,
        heatmaps: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(state, dtype=torch.bool), torch.zeros(state[0])


def _spies() -> list[Spy]:
    return [Spy("spy"), ConsultingSpy("consulting"), OracleSpy("oracle")]


def _assert_only_the_oracle_saw(spies: list[Spy], gt_batches: list[torch.Tensor]) -> None:
    spy, consulting, oracle = spies
    assert spy.received and all(gt is None for gt in spy.received)
    assert consulting.received and all(gt is None for gt in consulting.received)
    assert len(oracle.received) == len(gt_batches)
    for seen, gt in zip(oracle.received, gt_batches, strict=True):
        assert torch.equal(seen, gt)


def test_only_oracles_receive_ground_truth_through_the_batch_pipeline() -> None:
    images, truth = _square_images()
    spies = _spies()
    pipeline = BatchPipeline([EmptySegmenter()], spies, CamSpec())
    pipeline.run(build_resnet("resnet18", 5, None), images, truth)
    _assert_only_the_oracle_saw(spies, [truth])


def test_only_oracles_receive_ground_truth_through_the_evaluation_callback(make_trainer) -> None:
    images, truth = _square_images(4)
    spies = _spies()
    callback = SegmentationEvaluation(BatchPipeline([EmptySegmenter()], spies))
    trainer = make_trainer(inference_mode=False, callbacks=[callback])
    loader = DataLoader(TensorDataset(images, torch.zeros(4, dtype=torch.long), truth), 2)
    trainer.test(ShapeClassifier(), dataloaders=loader)
    _assert_only_the_oracle_saw(spies, [truth[:2], truth[2:]])


def test_no_ground_truth_reaches_the_strategy_through_predict(tmp_path, make_trainer) -> None:
    images, _ = _square_images(3)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(denormalize_to_uint8(images)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    spy = ConsultingSpy("consulting")
    writer = MaskWriter(str(tmp_path / "out"), BatchPipeline([EmptySegmenter()], [spy]))
    trainer = make_trainer(inference_mode=False, callbacks=[writer])
    loader = DataLoader(ImageFolder(folder), batch_size=2, collate_fn=collate_images)
    trainer.predict(ShapeClassifier(), dataloaders=loader, return_predictions=False)
    # per batch of two and of one: the heatmap's own prompts, then segment (which prompts too)
    assert len(spy.received) == 2 * 3
    assert all(gt is None for gt in spy.received)
