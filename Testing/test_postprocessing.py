"""Post-processing: largest liver, holes, tumor inside liver, lesion size in mm³, closing."""

import numpy as np

from LiverTumorSegLib.model.card import PostprocessingSpec
from LiverTumorSegLib.postprocessing import ellipsoid_structure, postprocess


def _labels():
    labels = np.zeros((30, 30, 30), dtype=np.uint8)
    labels[2:20, 2:20, 2:20] = 1          # liver
    labels[8:12, 8:12, 8:12] = 0          # enclosed hole
    labels[25:28, 25:28, 25:28] = 1       # small false-positive organ island
    labels[4:7, 4:7, 4:7] = 2             # 27-voxel lesion inside the liver
    labels[14, 14, 14] = 2                # 1-voxel lesion
    labels[25, 2, 2] = 2                  # tumor outside the liver
    return labels


def test_default_steps():
    out = postprocess(_labels(), (1.0, 1.0, 1.0), PostprocessingSpec(min_lesion_volume_mm3=10))
    assert out[26, 26, 26] == 0, "small island removed"
    assert out[10, 10, 10] == 1, "hole filled"
    assert out[25, 2, 2] == 0, "tumor outside liver removed"
    assert out[14, 14, 14] == 1, "1-voxel lesion below 10 mm3 becomes liver"
    assert np.count_nonzero(out == 2) == 27


def test_lesion_size_threshold_is_in_mm3_not_voxels():
    spec = PostprocessingSpec(min_lesion_volume_mm3=50)
    coarse = postprocess(_labels(), (1.0, 1.0, 2.0), spec)   # lesion 27 voxels = 54 mm3: kept
    fine = postprocess(_labels(), (1.0, 1.0, 1.0), spec)     # 27 mm3: removed
    assert np.count_nonzero(coarse == 2) == 27
    assert np.count_nonzero(fine == 2) == 0


def test_steps_can_be_switched_off():
    spec = PostprocessingSpec(keep_largest_liver=False, fill_liver_holes=False,
                              tumor_inside_liver_only=False, min_lesion_volume_mm3=0)
    out = postprocess(_labels(), (1.0, 1.0, 1.0), spec)
    np.testing.assert_array_equal(out, _labels())


def test_closing_bridges_a_gap_smaller_than_its_radius():
    labels = np.zeros((20, 20, 20), dtype=np.uint8)
    labels[3:17, 3:9, 3:17] = 1
    labels[3:17, 10:17, 3:17] = 1  # one-voxel slit at j = 9
    spec = PostprocessingSpec(closing_radius_mm=2.0, keep_largest_liver=False, fill_liver_holes=False)
    assert postprocess(labels, (1.0, 1.0, 1.0), spec)[10, 9, 10] == 1
    assert postprocess(labels, (1.0, 1.0, 1.0), PostprocessingSpec())[10, 9, 10] == 0


def test_ball_is_anisotropic():
    ball = ellipsoid_structure(4.0, (1.0, 1.0, 2.0))
    assert ball.shape == (9, 9, 5)


def _card_spec():
    """A card's post-processing that differs from the defaults in every field."""
    defaults = PostprocessingSpec()
    return PostprocessingSpec(keep_largest_liver=not defaults.keep_largest_liver,
                              fill_liver_holes=not defaults.fill_liver_holes,
                              tumor_inside_liver_only=not defaults.tumor_inside_liver_only,
                              min_lesion_volume_mm3=defaults.min_lesion_volume_mm3 + 150.0,
                              closing_radius_mm=defaults.closing_radius_mm + 1.5)


def test_overrides_change_only_the_choices_given():
    import dataclasses

    spec = _card_spec()
    assert spec.with_overrides() == spec
    assert spec.with_overrides(min_lesion_volume_mm3=0.0) == dataclasses.replace(
        spec, min_lesion_volume_mm3=0.0)
    assert spec.with_overrides(keep_largest_liver=not spec.keep_largest_liver,
                               closing_radius_mm=0.0) == dataclasses.replace(
        spec, keep_largest_liver=not spec.keep_largest_liver, closing_radius_mm=0.0)


def test_command_line_options_reach_the_card_spec_through_the_helper(random_card):
    import dataclasses

    from LiverTumorSegLib.cli import _postprocessing, build_parser

    card = dataclasses.replace(random_card, postprocessing=_card_spec())
    parse = build_parser().parse_args
    assert _postprocessing(card, parse(["segment", "ct.nii.gz"])) == card.postprocessing, \
        "without options, every field of the card (its minimum lesion volume too) is used"
    assert _postprocessing(card, parse(["segment", "ct.nii.gz", "--min-lesion-mm3", "5",
                                        "--all-liver-components"])) == \
        dataclasses.replace(card.postprocessing, min_lesion_volume_mm3=5.0, keep_largest_liver=False)
    assert _postprocessing(card, parse(["demo"])) == card.postprocessing
