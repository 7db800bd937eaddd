"""engine/frequency.py: the fine-detail share lessons 09 and 11 check, against known signals."""

from __future__ import annotations

import math

import pytest
import torch

from cnnviz_widgets.engine.optimize.frequency import high_frequency_share


def _stripes(cycles_per_pixel: float, size: int = 64) -> torch.Tensor:
    # Vertical stripes at an exact FFT frequency: all of their energy sits at that frequency.
    col = torch.arange(size, dtype=torch.float64)
    row = torch.cos(2 * math.pi * cycles_per_pixel * col)
    return (0.5 + 0.25 * row).expand(1, 3, size, size).clone()


def test_pure_frequencies_fall_on_the_right_side_of_the_cutoff():
    assert high_frequency_share(_stripes(4 / 64)) == pytest.approx(0.0, abs=1e-9)
    assert high_frequency_share(_stripes(24 / 64)) == pytest.approx(1.0, rel=1e-9)
    assert high_frequency_share(_stripes(24 / 64), cutoff=0.4) == pytest.approx(0.0, abs=1e-9)


def test_a_mixture_splits_by_energy_and_ignores_scale_and_offset():
    low, high = _stripes(4 / 64) - 0.5, _stripes(24 / 64) - 0.5
    mix = 0.5 + low + 0.5 * high            # amplitudes 1 : 0.5, energies 1 : 0.25
    assert high_frequency_share(mix) == pytest.approx(0.25 / 1.25, rel=1e-6)
    assert high_frequency_share(3 * mix - 7) == pytest.approx(high_frequency_share(mix), rel=1e-9)
    assert high_frequency_share(mix[0]) == pytest.approx(high_frequency_share(mix), rel=1e-12)


def test_white_noise_has_the_share_of_the_frequency_plane_above_the_cutoff():
    noise = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    area_above = 1 - math.pi * 0.25 ** 2      # the disc of radius 0.25 in the unit square
    assert high_frequency_share(noise) == pytest.approx(area_above, rel=0.03)
    blurred = torch.nn.functional.avg_pool2d(noise, 3, stride=1, padding=1)
    assert high_frequency_share(blurred) < 0.5 * high_frequency_share(noise)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="flat"):
        high_frequency_share(torch.full((1, 3, 8, 8), 0.5))
    with pytest.raises(ValueError, match="cutoff"):
        high_frequency_share(torch.rand(1, 3, 8, 8), cutoff=0.7)
    with pytest.raises(ValueError, match="one image at a time"):
        high_frequency_share(torch.rand(2, 3, 8, 8))
    with pytest.raises(TypeError, match="tensor"):
        high_frequency_share([[0.0]])
