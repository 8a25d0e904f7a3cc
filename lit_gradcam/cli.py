"""The `python main.py {fit,validate,test,predict}` command line, built on LightningCLI."""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import (
    ArgsType,
    LightningArgumentParser,
    LightningCLI,
    SaveConfigCallback,
)
from lightning.pytorch.utilities import rank_zero_warn

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.data.backgrounds import BackgroundUnavailableError
from lit_gradcam.data.dataset import DatasetError
from lit_gradcam.errors import ConfigError, file_in_the_way
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.models import WeightsUnavailableError
from lit_gradcam.pipeline import BatchPipeline
from lit_gradcam.precision import default_precision
from lit_gradcam.prediction import MaskWriter
from lit_gradcam.prediction_files import OutputDirError, OutputExistsError
from lit_gradcam.pretrained import ShapesWeightsError
from lit_gradcam.segmenters.checkpoints import CheckpointDownloadError, NoOfficialCheckpointError
from lit_gradcam.segmenters.integrity import CheckpointIntegrityError
from lit_gradcam.segmenters.sam_models import CheckpointArchitectureError

#: Errors whose message says what is wrong and what to do: `main` prints it alone and exits 1.
#: FileNotFoundError names the missing file (a SAM checkpoint, say).
USER_ERRORS = (
    ConfigError,
    DatasetError,
    ShapesWeightsError,
    BackgroundUnavailableError,
    WeightsUnavailableError,
    CheckpointIntegrityError,
    CheckpointDownloadError,
    CheckpointArchitectureError,
    NoOfficialCheckpointError,
    OutputExistsError,
    OutputDirError,
    FileNotFoundError,
    MisconfigurationException,  # Lightning's own: an accelerator, device or precision it lacks
)


#: What every run shares, read before any --config file (see the file's header).
BASE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
#: The run's name (log and checkpoint folders) when no --config file is given.
DEFAULT_RUN = "default"


class RunConfigSaver(SaveConfigCallback):
    """Saves the run's `config.yaml` beside its logs, as Lightning does, or, without a logger,
    beside its checkpoints: never into the current folder, where Lightning's fallback would
    overwrite a file of the user's."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.loggers:
            self.save_to_log_dir = False  # save_config below writes it instead
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.save_to_log_dir:
            return
        checkpoints = trainer.checkpoint_callback
        if checkpoints is None or not checkpoints.dirpath:
            rank_zero_warn(
                f"no logger and no checkpoint folder: the run's {self.config_filename} is not "
                "saved (it would land in the current folder)"
            )
            return
        folder = Path(checkpoints.dirpath)
        folder.mkdir(parents=True, exist_ok=True)
        self.parser.save(
            self.config,
            str(folder / self.config_filename),
            skip_none=False,
            overwrite=True,  # the checkpoint folder's own config, as its last.ckpt is
            multifile=self.multifile,
        )


class LitGradCamCLI(LightningCLI):
    """LightningCLI with the project's wiring: the model class from the config (the classifier
    unless a config names another, e.g. `SamTuner`), fixed checkpoint folder,
    one `method` section linked into both the evaluation callback and the prediction writer, and
    no silent evaluation of random weights."""

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
            _require_folder(setting, folder)
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
        """As LightningCLI does, minus the no-click evaluation and the mask writer when the model
        is not the classifier (a `SamTuner` scores itself against ground-truth prompts)."""
        super().instantiate_classes()
        if not isinstance(self.model, ShapeClassifier):
            self.trainer.callbacks = [
                callback
                for callback in self.trainer.callbacks
                if not isinstance(callback, (SegmentationEvaluation, MaskWriter))
            ]

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, then check a `--ckpt_path` file before LightningCLI reads its hyper-parameters
        from it (a missing or broken file would end in a traceback there or later). A config
        file that is not valid YAML is named first: jsonargparse's message names no file."""
        words = sys.argv[1:] if args is None else args
        if isinstance(words, list):
            for path in _config_files(words):
                try:
                    yaml.safe_load(path.read_text())
                except (yaml.YAMLError, UnicodeDecodeError) as error:
                    mark = getattr(error, "problem_mark", None)
                    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                    problem = getattr(error, "problem", None) or error
                    parser.error(f"--config {path}: not valid YAML{where}: {problem}")
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path is not None and "://" in ckpt_path:
            parser.error(
                f"--ckpt_path {ckpt_path}: remote checkpoints are not loaded (Lightning unpickles "
                "them in full, which runs any code they hold); download the file, check it, and "
                "pass its local path"
            )
        if ckpt_path is not None and _names_a_local_file(ckpt_path):
            self._require_checkpoint_file(ckpt_path)
            self._require_model_of_config(ckpt_path)

    def _require_model_of_config(self, path: str) -> None:
        """A checkpoint saved by another model class than the config's is refused: LightningCLI
        would otherwise build the checkpoint's class instead, and score something else than the
        config says without a word."""
        try:
            # mapped, not read: only the hyper-parameters are wanted; Lightning loads it next
            loaded = torch.load(path, weights_only=True, map_location="cpu", mmap=True)
        except Exception:  # torch raises many types; Lightning loads it next and says why
            return
        saved_class = loaded.get("hyper_parameters", {}).get("_class_path")
        model = self.config[self.config["subcommand"]].get("model")
        wanted = getattr(model, "class_path", None)
        if saved_class and wanted and saved_class != wanted:
            self.parser.error(
                f"--ckpt_path {path}: a checkpoint of {saved_class}, but the config's model is "
                f"{wanted}; pass the config it was trained with (its run folder's config.yaml "
                "has it)"
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
            found = callback._find_last_checkpoints(self.trainer) if callback else set()
            if not found:
                where = callback.dirpath if callback else "(no ModelCheckpoint configured)"
                self.parser.error(
                    f"--ckpt_path last: no last checkpoint in {where}. Run `python main.py fit` "
                    "with the same config first, or pass `--ckpt_path path/to/file.ckpt`."
                )
            for path in found:
                self._require_checkpoint_file(path)

    def _require_checkpoint_file(self, path: str) -> None:
        """A local checkpoint must exist and be a whole PyTorch file (a zip archive), else the
        user reads why instead of an unpickling traceback."""
        if not Path(path).is_file():
            self.parser.error(f"--ckpt_path {path}: no such checkpoint file")
        if not zipfile.is_zipfile(path):
            self.parser.error(
                f"--ckpt_path {path}: not a readable PyTorch checkpoint (truncated, or not a "
                "file `python main.py fit` saved)"
            )
        if not _is_lightning_checkpoint(path):
            self.parser.error(
                f"--ckpt_path {path}: a PyTorch file but not a Lightning checkpoint (a SAM .pth "
                "or exported weights?); pass a .ckpt that `python main.py fit` saved"
            )


def _require_folder(setting: str, folder: object) -> None:
    """ConfigError unless `folder` (a str setting; others are left to Lightning) can be a
    folder: neither it nor a folder above it is an existing file."""
    if not isinstance(folder, str):
        return
    if (part := file_in_the_way(Path(folder))) is not None:
        raise ConfigError(
            f"--{setting} {folder}: {part} is a file; expected a folder (created if absent)"
        )


def _config_files(words: list[str]) -> list[Path]:
    """The existing files that `-c` / `--config` name in a command line."""
    found = []
    for index, word in enumerate(words):
        value = None
        if word in ("-c", "--config") and index + 1 < len(words):
            value = words[index + 1]
        elif word.startswith("--config="):
            value = word.split("=", 1)[1]
        if value is not None and Path(value).is_file():
            found.append(Path(value))
    return found


def _is_lightning_checkpoint(path: str) -> bool:
    """Whether a PyTorch zip archive holds a Lightning checkpoint, read from its pickle's bytes
    (its key names) without unpickling anything."""
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.rsplit("/", 1)[-1] == "data.pkl"]
        return bool(pickles) and b"pytorch-lightning_version" in archive.read(pickles[0])


def _names_a_local_file(ckpt_path: str) -> bool:
    """False for what Lightning resolves itself ("best", "last", "hpc", "registry:..."); URLs
    are refused before this is asked."""
    special = ckpt_path in ("best", "last", "hpc") or ckpt_path.split(":")[0].lower() == "registry"
    return not special


def main(args: ArgsType = None) -> None:
    """`python main.py`: the CLI, with each error a user can fix printed as one message (no
    traceback) and a non-zero exit status."""
    try:
        cli_main(args)
    except Exception as error:
        cause = user_error(error)
        if cause is None:
            raise
        sys.exit(f"error: {cause}")


def user_error(error: BaseException) -> BaseException | None:
    """The error a user can fix that `error` is or that jsonargparse wrapped while building a
    config's classes ("Does not validate against any of the Union subtypes"), else None."""
    if isinstance(error, USER_ERRORS):
        return error
    frames = traceback.extract_tb(error.__traceback__)
    if not frames or "jsonargparse" not in frames[-1].filename:
        return None
    cause = error.__cause__ or error.__context__
    while cause is not None and not isinstance(cause, USER_ERRORS):
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
