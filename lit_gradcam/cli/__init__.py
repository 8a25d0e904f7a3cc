"""The command line: `python main.py {fit,validate,test,predict}`."""

from lit_gradcam.cli.app import LitGradCamCLI, cli_main, main

__all__ = ["LitGradCamCLI", "cli_main", "main"]
