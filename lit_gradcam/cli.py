"""The `python main.py {fit,validate,test,predict}` command line, built on LightningCLI."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.data.datamodule import ShapesDataModule
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.pipeline import BatchPipeline
from lit_gradcam.prediction import MaskWriter


class LitGradCamCLI(LightningCLI):
    """LightningCLI with the project's wiring: class count linked, fixed checkpoint folder, one
    `method` section linked into both the evaluation callback and the prediction writer, and
    no silent evaluation of random weights."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # one method (CAM, strategies, segmenters) that validate, test and predict all read
        parser.add_class_arguments(BatchPipeline, "method")
        parser.add_lightning_class_args(SegmentationEvaluation, "evaluation")
        parser.add_lightning_class_args(MaskWriter, "output")
        parser.link_arguments("method", "evaluation.method", apply_on="instantiate")
        parser.link_arguments("method", "output.method", apply_on="instantiate")
        parser.set_defaults(
            {
                "checkpoint.dirpath": "checkpoints/default",
                "checkpoint.filename": "epoch={epoch}-val_acc={val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                # bare `python main.py fit` / `test` = the offline quick start: its length in
                # optimizer steps, validated every 200 of them, whatever the folder's size
                "trainer.max_steps": 1200,
                "trainer.max_epochs": -1,
                "trainer.val_check_interval": 200,
                "trainer.check_val_every_n_epoch": None,
                "data.train_size": 20000,
                "data.batch_size": 64,
            }
        )

    def before_validate(self) -> None:
        self._require_checkpoint()

    def before_test(self) -> None:
        self._require_checkpoint()

    def before_predict(self) -> None:
        self._require_checkpoint()

    def _require_checkpoint(self) -> None:
        """Stop `test` (and friends) from scoring untrained weights without a word."""
        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        how = (
            f"`python main.py {self.subcommand}` scores a trained classifier: pass "
            "`--ckpt_path last` (the last checkpoint of `python main.py fit` with the same "
            "config) or `--ckpt_path path/to/file.ckpt`."
        )
        if ckpt_path is None:
            self.parser.error(f"no checkpoint given. {how}")
        if ckpt_path == "last":
            callback = self.trainer.checkpoint_callback
            found = callback._find_last_checkpoints(self.trainer) if callback else set()
            if not found:
                where = callback.dirpath if callback else "(no ModelCheckpoint configured)"
                self.parser.error(
                    f"--ckpt_path last: no last checkpoint in {where}. Run `python main.py fit` "
                    "with the same config first, or pass `--ckpt_path path/to/file.ckpt`."
                )


def cli_main(args: ArgsType = None, run: bool = True) -> LitGradCamCLI:
    """Build (and by default run) the CLI; `args` lets tests drive it without a subprocess."""
    return LitGradCamCLI(
        ShapeClassifier,
        ShapesDataModule,
        seed_everything_default=0,
        trainer_defaults={"inference_mode": False},
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )
