"""Orientation: any permutation/flip of the grid maps to one canonical RAS array and back exactly."""

import itertools
import warnings

import numpy as np
import pytest

from LiverTumorSegLib.volume.orientation import plan_reorientation


def _affine_for(axes, flips, spacing=(0.7, 0.8, 2.5), origin=(10.0, -20.0, 30.0)):
    """Affine whose voxel axis axes[w] points along world axis w (negated where flipped)."""
    affine = np.eye(4)
    affine[:3, :3] = 0
    for world, voxel in enumerate(axes):
        affine[world, voxel] = spacing[voxel] * (-1 if flips[world] else 1)
    affine[:3, 3] = origin
    return affine


def _world(affine, ijk):
    return affine[:3, :3] @ np.asarray(ijk, float) + affine[:3, 3]


@pytest.mark.parametrize("axes", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("flips", [(False, False, False), (True, True, False), (True, False, True)])
def test_round_trip_and_world_positions(axes, flips):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 1000, size=(5, 6, 7)).astype(np.int16)
    affine = _affine_for(axes, flips)
    plan = plan_reorientation(array.shape, affine)
    canonical = plan.to_canonical(array)
    np.testing.assert_array_equal(plan.from_canonical(canonical), array)
    # Every canonical voxel sits at the same world position as the input voxel it came from.
    canonical_affine = plan.canonical_affine
    assert np.all(np.diag(canonical_affine)[:3] > 0)
    assert np.allclose(canonical_affine[:3, :3], np.diag(np.diag(canonical_affine)[:3]))
    for ijk in [(0, 0, 0), (1, 2, 3), tuple(s - 1 for s in canonical.shape)]:
        world = _world(canonical_affine, ijk)
        source = np.linalg.solve(affine[:3, :3], world - affine[:3, 3]).round().astype(int)
        assert canonical[ijk] == array[tuple(source)]
    assert plan.obliquity_degrees == pytest.approx(0.0, abs=1e-6)


def test_oblique_grid_maps_back_exactly_and_warns_with_angle():
    angle = np.radians(40)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 0.8, 2.0])
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    with pytest.warns(UserWarning, match="40 degrees"):
        plan = plan_reorientation(array.shape, affine)
    np.testing.assert_array_equal(plan.from_canonical(plan.to_canonical(array)), array)


def test_mildly_oblique_grid_does_not_warn():
    angle = np.radians(10)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                               [0, np.sin(angle), np.cos(angle)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = plan_reorientation((3, 3, 3), affine)
    assert plan.obliquity_degrees == pytest.approx(10.0, abs=0.01)
