"""Promptable segmenters behind one seam (`base.Segmenter`): `embed` once per image, `predict`
per prompt set. GrabCut (`grabcut`) needs no weights; SAM (`sam`) is built by `sam_models` from
the files `checkpoints` fetches. Import each name from its own module."""
