"""`output_stems`: one output name per input, unique ignoring case, short enough to write."""

from lit_gradcam.data.image_folder import MAX_STEM_BYTES, output_stems


def test_long_names_are_cut_to_a_writable_length_and_stay_unique() -> None:
    names = ["a" * 250 + ".png", "a" * 250 + "_2.png", "é" * 200 + ".jpg", "short.png"]
    stems = output_stems(names)
    assert all(len(stem.encode()) <= MAX_STEM_BYTES + len("_99") for stem in stems)
    assert len({stem.casefold() for stem in stems}) == len(names)
    assert stems[2] == "é" * (MAX_STEM_BYTES // 2)  # cut on a character boundary
    assert stems[3] == "short"
    assert all(len((stem + "_overlay.png").encode()) <= 255 for stem in stems)
