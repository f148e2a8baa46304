"""DiffAugment for D's inputs (a3gan.training.augment): hand-computed transforms, draws, gradients, bad policies,
and the training loop passing every D input through it (and mirroring the data) only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from a3gan.config import ConfigError, load_config
from a3gan.training import augment
from a3gan.training.augment import (
    AugmentedD,
    color,
    cutout,
    diff_augment,
    parse_policy,
    random_flip,
    translate,
)


def test_parse_policy() -> None:
    assert parse_policy("") == ()
    assert parse_policy(" translation , cutout") == ("translation", "cutout")
    assert parse_policy("color,translation,cutout") == ("color", "translation", "cutout")
    with pytest.raises(ConfigError, match="unknown augmentation 'rotate'"):
        parse_policy("translation,rotate")
    with pytest.raises(ConfigError, match="twice"):
        parse_policy("cutout,cutout")


def test_config_validates_the_policy() -> None:
    assert (
        load_config("tiny", ["train.diffaug=translation,cutout"]).validate().train.diffaug
        == "translation,cutout"
    )
    with pytest.raises(ConfigError, match="unknown augmentation"):
        load_config("tiny", ["train.diffaug=zoom"]).validate()


def test_translate_by_hand() -> None:
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4)  # rows 1-4, 5-8, 9-12, 13-16
    # one down, one left: out[r, c] = x[r - 1, c + 1], 0 where that is outside
    want = torch.tensor([[0.0, 0, 0, 0], [2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]])
    assert torch.equal(translate(x, torch.tensor([1]), torch.tensor([-1]))[0, 0], want)
    # per image: the second image is shifted two up and not sideways
    x2 = torch.cat([x, x])
    out = translate(x2, torch.tensor([0, -2]), torch.tensor([0, 0]))
    assert torch.equal(out[0], x[0])
    assert torch.equal(
        out[1, 0], torch.tensor([[9.0, 10, 11, 12], [13, 14, 15, 16], [0, 0, 0, 0], [0, 0, 0, 0]])
    )
    # a shift past the border empties the image
    assert torch.equal(translate(x, torch.tensor([5]), torch.tensor([0])), torch.zeros_like(x))


def test_cutout_by_hand() -> None:
    x = torch.ones(2, 3, 4, 4)
    out = cutout(x, torch.tensor([1, 0]), torch.tensor([2, 0]), 2)
    # image 0: top-left corner (0, 1) -> rows 0-1, cols 1-2 zeroed in every channel
    want0 = torch.tensor([[1.0, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]])
    # image 1: corner (-1, -1) -> only pixel (0, 0) is inside the image
    want1 = torch.ones(4, 4)
    want1[0, 0] = 0
    for c in range(3):
        assert torch.equal(out[0, c], want0) and torch.equal(out[1, c], want1)


def test_color_by_hand() -> None:
    # one image, 3 channels, 1x2 pixels: pixel A = (0.2, 0.4, 0.6), pixel B = (-0.2, 0.0, 0.2)
    x = torch.tensor([[[[0.2, -0.2]], [[0.4, 0.0]], [[0.6, 0.2]]]])
    one, zero = torch.ones(1), torch.zeros(1)
    # brightness only
    assert torch.allclose(color(x, torch.tensor([0.1]), one, one), x + 0.1)
    # saturation 0: each pixel becomes its channel mean (A -> 0.4, B -> 0.0)
    grey = color(x, zero, zero, one)
    assert torch.allclose(grey[0, :, 0, 0], torch.full((3,), 0.4)) and torch.allclose(grey[0, :, 0, 1], zero)
    # contrast 0: every value becomes the image mean (0.2)
    assert torch.allclose(color(x, zero, one, zero), torch.full_like(x, 0.2))
    # saturation 2 around A's mean 0.4: (0.0, 0.4, 0.8)
    assert torch.allclose(color(x, zero, torch.tensor([2.0]), one)[0, :, 0, 0], torch.tensor([0.0, 0.4, 0.8]))


def test_diff_augment_draws_shapes_and_gradients() -> None:
    x = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert diff_augment(x, ()) is x
    pol = ("color", "translation", "cutout")
    a = diff_augment(x, pol, torch.Generator().manual_seed(1))
    b = diff_augment(x, pol, torch.Generator().manual_seed(1))
    c = diff_augment(x, pol, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    # translation stays within 1/8 of the side: at most 8 empty rows and 8 empty columns per image
    ones = torch.ones(64, 3, 64, 64)
    t = diff_augment(ones, ("translation",), torch.Generator().manual_seed(3))
    empty_rows = (t[:, 0].sum(dim=2) == 0).sum(dim=1)
    empty_cols = (t[:, 0].sum(dim=1) == 0).sum(dim=1)
    assert empty_rows.max() <= 8 and empty_cols.max() <= 8 and (empty_rows + empty_cols).max() > 0
    # cutout removes at most a 32x32 square (less where it sticks out), and at least one pixel
    k = diff_augment(ones, ("cutout",), torch.Generator().manual_seed(4))
    holes = (k[:, 0] == 0).sum(dim=(1, 2))
    assert holes.max() <= 32 * 32 and holes.min() >= 1 and (holes == 32 * 32).any()
    # differentiable: the gradient reaches every pixel that is not cut out
    xg = x.clone().requires_grad_(True)
    diff_augment(xg, ("cutout",), torch.Generator().manual_seed(5)).sum().backward()
    kept = diff_augment(torch.ones_like(x), ("cutout",), torch.Generator().manual_seed(5))
    assert torch.equal(xg.grad, kept)


def test_random_flip_mirrors_the_drawn_half() -> None:
    x = torch.randn(64, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    out = random_flip(x, torch.Generator().manual_seed(7))
    drawn = torch.rand(64, generator=torch.Generator().manual_seed(7)) < 0.5  # the same draw
    assert torch.equal(out[drawn], x[drawn].flip(-1)) and torch.equal(out[~drawn], x[~drawn])
    assert 16 < int(drawn.sum()) < 48
    assert torch.equal(random_flip(x, torch.Generator().manual_seed(7)), out)


class _RecordingD(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.mean(dim=(1, 2, 3)), x.mean(dim=(2, 3))

    def critic(self, x):
        self.seen.append(x.detach().clone())
        return x.mean(dim=(1, 2, 3))


def test_augmented_d_sees_transformed_inputs() -> None:
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    d = _RecordingD()
    view = AugmentedD(d, ("translation", "cutout"), torch.Generator().manual_seed(0))
    view(x)
    view.critic(x)
    assert len(d.seen) == 2 and not torch.equal(d.seen[0], x) and not torch.equal(d.seen[1], x)
    assert not torch.equal(d.seen[0], d.seen[1])  # a fresh draw per call
    plain = AugmentedD(d, ())
    plain(x)
    assert torch.equal(d.seen[2], x)


def test_augmented_d_critic_only_reads_attributes_from_the_original() -> None:
    """heads="critic": D_cls reads T(x), D_att reads x itself (a second pass); "both": both read T(x)."""
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    d = _RecordingD()
    score, att = AugmentedD(d, ("translation", "cutout"), torch.Generator().manual_seed(0), heads="critic")(x)
    assert len(d.seen) == 2 and torch.equal(d.seen[1], x) and not torch.equal(d.seen[0], x)
    assert torch.equal(score, d.seen[0].mean(dim=(1, 2, 3))) and torch.equal(att, x.mean(dim=(2, 3)))
    d.seen.clear()
    score, att = AugmentedD(d, ("translation", "cutout"), torch.Generator().manual_seed(0), heads="both")(x)
    assert len(d.seen) == 1 and torch.equal(att, d.seen[0].mean(dim=(2, 3)))
    with pytest.raises(ValueError, match="heads must be one of"):
        AugmentedD(d, (), heads="att")
    with pytest.raises(ConfigError, match="diffaug_heads"):
        load_config("tiny", ["train.diffaug_heads=att"]).validate()


def test_loop_routes_every_d_input_through_diffaug_only_when_set(
    tmp_path: Path, synthetic_celeba: Path, monkeypatch
) -> None:
    """Per G step (tiny preset: n_critic 1): the D step augments real, fake and the GP mix (3 calls), the G step
    the fake (1 call); train.flip mirrors every batch drawn (2 per step). Unset, neither is called."""
    from a3gan.training import loop as L

    calls: list[tuple[str, ...]] = []
    flips: list[int] = []
    real, real_flip = augment.diff_augment, augment.random_flip

    def spy(x, policy, generator=None):
        calls.append(policy)
        return real(x, policy, generator)

    def flip_spy(x, generator=None):
        flips.append(x.shape[0])
        return real_flip(x, generator)

    monkeypatch.setattr(augment, "diff_augment", spy)
    monkeypatch.setattr(augment, "random_flip", flip_spy)
    quiet = ["train.sample_every=1000", "train.log_every=1", "train.total_steps=2", "train.ckpt_every=2"]
    L.train(load_config("tiny", quiet), synthetic_celeba, tmp_path / "off", progress=False)
    assert calls == [] and flips == []
    L.train(
        load_config("tiny", [*quiet, "train.diffaug=translation,cutout", "train.flip=true"]),
        synthetic_celeba,
        tmp_path / "on",
        progress=False,
    )
    assert len(calls) == 2 * 4 and set(calls) == {("translation", "cutout")}
    assert flips == [4] * 4  # batch 4, one D and one G draw per step
