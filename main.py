"""Entry point: `python main.py {fit,validate,test,predict} [--config configs/...yaml]`."""

from lit_gradcam.cli import main

if __name__ == "__main__":
    main()
