"""The method that validate, test and predict all run (the `method:` section of every config):
`BatchPipeline` computes each CAM once per batch, embeds each batch once per segmenter, runs
every strategy on that state, and returns `PipelineOutput`."""
