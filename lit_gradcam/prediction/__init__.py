"""`python main.py predict`'s output: `MaskWriter` (`writer`) writes a mask, an overlay and a CSV
row per image through `OutputFolder` (`files`), which commits a run's files only once it has
succeeded and never replaces a file of the user's."""
