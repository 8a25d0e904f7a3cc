"""The `python main.py {fit,validate,test,predict}` command line, built on LightningCLI: the
project's wiring, and the one place where an error a user can fix (`UserError`) becomes one
message and a non-zero exit."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.no_shape import NoShapeFlag
from lit_gradcam.cli.checkpoint_files import (
    last_checkpoints,
    names_a_local_file,
    require_checkpoint_file,
    require_model_class,
)
from lit_gradcam.cli.config_files import (
    BASE_CONFIG,
    DEFAULT_RUN,
    RunConfigSaver,
    config_files,
    require_folder,
    yaml_problem,
)
from lit_gradcam.cli.last_checkpoint import FinalLastCheckpoint
from lit_gradcam.cli.stopping import StopAtBoundary, stop_signals
from lit_gradcam.errors import ConfigError, UserError
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.precision import default_precision
from lit_gradcam.prediction.writer import MaskWriter

#: Callbacks that only the classifier's runs take: a model that is not the classifier (a
#: `SamTuner`) scores itself against ground-truth prompts and flags nothing.
CLASSIFIER_CALLBACKS = (SegmentationEvaluation, MaskWriter, NoShapeFlag)


class LitGradCamCLI(LightningCLI):
    """LightningCLI with the project's wiring: the model class from the config (the classifier
    unless a config names another, e.g. `SamTuner`), fixed checkpoint folder,
    one `method` section linked into both the evaluation callback and the prediction writer, no
    silent evaluation of random weights, and a stop at the next step on SIGTERM (`stopping`)."""

    #: The command-line words the run was given (None where `args` was not a list).
    words: list[str] | None = None

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
    ) -> None:
        """Every parser that reads a run's config (each subcommand's, or the one parser when
        no subcommand runs) reads configs/base.yaml first."""
        base = {"default_config_files": [str(BASE_CONFIG)]}
        if add_subcommands:
            subparser_kwargs = {
                name: {**base, **subparser_kwargs.get(name, {})} for name in self.subcommands()
            }
        else:
            main_kwargs = {**base, **main_kwargs}
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # one method (CAM, strategies, segmenters) that validate, test and predict all read
        parser.add_class_arguments(BatchPipeline, "method")
        parser.add_lightning_class_args(SegmentationEvaluation, "evaluation")
        parser.add_lightning_class_args(MaskWriter, "output")
        parser.add_lightning_class_args(NoShapeFlag, "no_shape")
        parser.link_arguments("method", "evaluation.method", apply_on="instantiate")
        parser.link_arguments("method", "output.method", apply_on="instantiate")
        # mixed precision where the hardware runs it natively (written to config.yaml)
        parser.set_defaults({"trainer.precision": default_precision()})

    def before_instantiate_classes(self) -> None:
        """Name the run where the config does not (configs/base.yaml leaves both open): its
        logs after the last --config file, which says what the run does (a sweep over the quick
        start logs as the sweep), its checkpoints after the first, the model it trains or reads
        (the sweep reads the quick start's). A relative log folder lies under
        `trainer.default_root_dir` when one is given, as Lightning's default logger's does."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        stems = [Path(str(path)).stem for path in config.get("config") or []] or [DEFAULT_RUN]
        if config.get("checkpoint.dirpath") is None:
            config["checkpoint.dirpath"] = f"checkpoints/{stems[0]}"
        init_args = getattr(config.get("trainer.logger"), "init_args", None)
        if init_args is not None and "name" in init_args and init_args.name is None:
            init_args.name = stems[-1]
        root = config.get("trainer.default_root_dir")
        save_dir = getattr(init_args, "save_dir", None)
        if root and isinstance(save_dir, str) and not Path(save_dir).is_absolute():
            init_args.save_dir = str(Path(root) / save_dir)  # as Lightning's own logger does
        for setting, folder in (
            ("checkpoint.dirpath", config.get("checkpoint.dirpath")),
            ("trainer.default_root_dir", root),
            ("trainer.logger.init_args.save_dir", getattr(init_args, "save_dir", None)),
        ):
            require_folder(setting, folder)
        self._drop_removed_hyper_parameters(config.get("model"))

    def _drop_removed_hyper_parameters(self, model: Any) -> None:
        """A checkpoint's hyper-parameters that its class no longer takes (saved by an earlier
        version: `model.no_shape_temperature`, say) reach the model as `dict_kwargs`, which would
        fail in its constructor; they are dropped, and the log names them."""
        extra = getattr(model, "dict_kwargs", None)
        if not extra:
            return
        module, _, name = str(model.class_path).rpartition(".")
        accepted = inspect.signature(getattr(importlib.import_module(module), name)).parameters
        removed = sorted(key for key in extra if key not in accepted)
        for key in removed:
            del extra[key]
        if removed:
            rank_zero_warn(
                f"--ckpt_path: the checkpoint's hyper-parameters {removed} are not "
                f"{name}'s any more (an earlier version saved it); loading it without them"
            )

    def instantiate_classes(self) -> None:
        """As LightningCLI does, minus `CLASSIFIER_CALLBACKS` when the model is not the
        classifier. A user error that jsonargparse wraps while building a config's class ("Does
        not validate against any of the Union subtypes") is raised as itself, and Lightning's
        refusal of a trainer setting (an accelerator, device or precision this machine lacks)
        as a ConfigError."""
        try:
            super().instantiate_classes()
        except MisconfigurationException as error:
            raise ConfigError(f"trainer: {error}") from error
        except Exception as error:
            cause = _wrapped_user_error(error)
            if cause is None:
                raise
            raise cause from None
        if not isinstance(self.model, ShapeClassifier):
            self.trainer.callbacks = [
                callback
                for callback in self.trainer.callbacks
                if not isinstance(callback, CLASSIFIER_CALLBACKS)
            ]
        self.trainer.callbacks += [StopAtBoundary(self.words), FinalLastCheckpoint()]

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, then check a `--ckpt_path` file before LightningCLI reads its hyper-parameters
        from it (a missing or broken file would end in a traceback there or later). A config
        file that is not valid YAML is named first: jsonargparse's message names no file."""
        words = sys.argv[1:] if args is None else args
        if isinstance(words, list):
            self.words = words
            for path in config_files(words):
                if (problem := yaml_problem(path)) is not None:
                    parser.error(problem)
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path is not None and "://" in ckpt_path:
            parser.error(
                f"--ckpt_path {ckpt_path}: remote checkpoints are not loaded (Lightning unpickles "
                "them in full, which runs any code they hold); download the file, check it, and "
                "pass its local path"
            )
        if ckpt_path is not None and names_a_local_file(ckpt_path):
            require_checkpoint_file(ckpt_path)
            model = self.config[subcommand].get("model")
            require_model_class(ckpt_path, getattr(model, "class_path", None))

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
            f"`python main.py {self.subcommand}` needs a trained model: pass "
            "`--ckpt_path last` (the last checkpoint of `python main.py fit` with the same "
            "config) or `--ckpt_path path/to/file.ckpt`."
        )
        if ckpt_path is None:
            self.parser.error(f"no checkpoint given. {how}")
        if ckpt_path == "best":
            callback = self.trainer.checkpoint_callback
            folder = Path(callback.dirpath) if callback and callback.dirpath else None
            saved = sorted(p.name for p in folder.glob("*.ckpt")) if folder else []
            self.parser.error(
                "--ckpt_path best: Lightning knows the best checkpoint only inside the `fit` "
                "run that saved it. Pass --ckpt_path last, or one of the files "
                f"{'in ' + str(folder) if folder else ''}: {', '.join(saved) or '(none saved)'}"
            )
        if ckpt_path == "last":
            callback = self.trainer.checkpoint_callback
            found = last_checkpoints(callback.dirpath if callback else None)
            if not found:
                where = callback.dirpath if callback else "(no ModelCheckpoint configured)"
                self.parser.error(
                    f"--ckpt_path last: no last checkpoint in {where}. Run `python main.py fit` "
                    "with the same config first, or pass `--ckpt_path path/to/file.ckpt`."
                )
            for path in found:
                require_checkpoint_file(str(path))


def main(args: ArgsType = None) -> None:
    """`python main.py`: the CLI, with each error a user can fix printed as one message (no
    traceback) and a non-zero exit status, and a stopped run's one line (`stopping`)."""
    with stop_signals():
        try:
            cli_main(args)
        except UserError as error:
            sys.exit(f"error: {error}")


def _wrapped_user_error(error: BaseException) -> UserError | None:
    """The user error that caused `error` (jsonargparse wraps one raised in a class it builds),
    else None."""
    cause = error.__cause__ or error.__context__
    while cause is not None and not isinstance(cause, UserError):
        cause = cause.__cause__ or cause.__context__
    return cause


def cli_main(args: ArgsType = None, run: bool = True) -> LitGradCamCLI:
    """Build (and by default run) the CLI; `args` lets tests drive it without a subprocess."""
    return LitGradCamCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )
