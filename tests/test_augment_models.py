"""Augmentation (the warp goes to inputs only), losses, and the model registry."""

import pytest
import torch

from masquerade.core.errors import InputError
from masquerade.models import create_model, list_models
from masquerade.train.augment import AugmentConfig, make_pair
from masquerade.train.losses import face_loss, ssim_map


def _src(n=4, size=64):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def test_warp_is_applied_to_inputs_and_not_targets():
    src = _src()
    w = torch.ones(4, 2, 64, 64)
    none = AugmentConfig(rotation=0, zoom=0, shift=0, flip=0, warp=0, lab_l=0, lab_ab=0)
    warp_only = AugmentConfig(rotation=0, zoom=0, shift=0, flip=0, warp=1.0, lab_l=0, lab_ab=0)
    x0, y0, _ = make_pair(src, w, 32, 1.0, none, torch.Generator().manual_seed(1))
    x1, y1, _ = make_pair(src, w, 32, 1.0, warp_only, torch.Generator().manual_seed(1))
    assert torch.allclose(x0, y0, atol=1e-4)  # without the warp the input is the target
    assert torch.allclose(y1, y0, atol=1e-4)  # the warp leaves the target alone
    assert (x1 - y1).abs().mean() > 5 * (x0 - y0).abs().mean() + 1e-3  # and changes the input


def test_affine_and_colour_are_shared_by_input_and_target():
    src = _src()
    w = torch.ones(4, 2, 64, 64)
    cfg = AugmentConfig(warp=0)
    x, y, wt = make_pair(src, w, 32, 1.0, cfg, torch.Generator().manual_seed(3))
    assert torch.allclose(x, y, atol=1e-4)
    plain = make_pair(
        src,
        w,
        32,
        1.0,
        AugmentConfig(rotation=0, zoom=0, shift=0, flip=0, warp=0, lab_l=0, lab_ab=0),
        torch.Generator().manual_seed(3),
    )[1]
    assert (y - plain).abs().mean() > 0.01  # the augmentation did something
    assert wt.shape == (4, 2, 32, 32)


def test_ssim_and_loss():
    x = _src(2)
    assert torch.allclose(ssim_map(x, x), torch.ones(1), atol=1e-4)
    w = torch.ones(2, 1, 64, 64)
    assert face_loss(x, x, w).item() < 1e-4
    assert face_loss(x, 1 - x, w).item() > 0.2


def test_ssim_matches_the_reference_gaussian_convolution():
    """The matrix-product blur equals the textbook 11x11 Gaussian window with reflect padding."""
    g = torch.exp(-((torch.arange(11.0) - 5) ** 2) / (2 * 1.5**2))
    k = (g[:, None] * g[None, :] / g.sum() ** 2).expand(3, 1, 11, 11)

    def blur(t):
        return torch.nn.functional.conv2d(torch.nn.functional.pad(t, (5,) * 4, mode="reflect"), k, groups=3)

    gen = torch.Generator().manual_seed(0)
    for shape in ((2, 3, 64, 64), (1, 3, 24, 40)):
        x, y = torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)
        mx, my = blur(x), blur(y)
        cov, vx, vy = blur(x * y) - mx * my, blur(x * x) - mx**2, blur(y * y) - my**2
        ref = ((2 * mx * my + 1e-4) * (2 * cov + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))
        assert torch.allclose(ssim_map(x, y), ref.mean(1, keepdim=True), atol=1e-5)


def test_registry_and_shapes():
    assert {"original", "lite"} <= set(list_models())
    with pytest.raises(InputError):
        create_model("nope")
    m = create_model("lite", mask=True)
    y = m(torch.rand(2, 3, 64, 64), "b")
    assert y.shape == (2, 4, 64, 64) and y.min() >= 0 and y.max() <= 1


def test_lite_d_renders_twice_lites_pixels_at_about_its_cost():
    from masquerade.train.loop import flops_per_sample

    cpu = torch.device("cpu")
    lite, lite_d = create_model("lite"), create_model("lite-d", size=128, mask=True)
    y = lite_d(torch.rand(2, 3, 128, 128), "a")
    assert y.shape == (2, 4, 128, 128) and y.min() >= 0 and y.max() <= 1
    assert flops_per_sample(lite_d, 128, cpu) < 1.2 * flops_per_sample(lite, 64, cpu)
    with pytest.raises(ValueError, match="multiple of 32"):
        create_model("lite-d", size=80)


def test_original_has_the_seeds_parameter_count():
    n = sum(p.numel() for p in create_model("original").parameters())
    assert 81e6 < n < 83e6
    lite = sum(p.numel() for p in create_model("lite").parameters())
    assert lite < n / 10
