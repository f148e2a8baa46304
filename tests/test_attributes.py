import pytest
import torch

from a3gan.attributes import ATTRIBUTES, PRESETS, MaskError, mask_names, mask_tensor, parse_mask


def test_ten_attributes_of_appendix_d():
    assert ATTRIBUTES == (
        "Bangs",
        "Blond_Hair",
        "Brown_Hair",
        "Bushy_Eyebrows",
        "Male",
        "Mouth_Slightly_Open",
        "Mustache",
        "Narrow_Eyes",
        "Pale_Skin",
        "Young",
    )


def test_presets_exactly_as_appendix_d():
    assert parse_mask("a3gan-0") == [0] * 10
    assert parse_mask("A3GAN-10") == [1] * 10
    assert mask_names(parse_mask("a3gan-1")) == ["Male"]
    assert mask_names(parse_mask("a3gan-3")) == ["Male", "Mustache", "Pale_Skin"]
    assert mask_names(parse_mask("a3gan5")) == ["Blond_Hair", "Male", "Mustache", "Pale_Skin", "Young"]
    # eyes and mouth are preserved in A3GAN-1/3/5 ("for fatigue detection")
    for p in ("a3gan-1", "a3gan-3", "a3gan-5"):
        bits = parse_mask(p)
        assert (
            bits[ATTRIBUTES.index("Narrow_Eyes")] == 0 and bits[ATTRIBUTES.index("Mouth_Slightly_Open")] == 0
        )
    assert set(PRESETS) == {"a3gan-0", "a3gan-1", "a3gan-3", "a3gan-5", "a3gan-10"}


def test_names_and_bits():
    assert parse_mask("Male,Young") == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert parse_mask("male, young ") == parse_mask("Male,Young")
    assert parse_mask("mouth-slightly-open") == parse_mask("Mouth_Slightly_Open")
    assert parse_mask("0000100001") == parse_mask("Male,Young")
    assert parse_mask([0, 0, 0, 0, 1, 0, 0, 0, 0, 1]) == parse_mask("Male,Young")
    assert parse_mask(None) == parse_mask("") == parse_mask("none") == [0] * 10
    assert parse_mask("all") == [1] * 10


def test_errors():
    with pytest.raises(MaskError, match="unknown attribute 'Beard'.*valid names: Bangs, Blond_Hair"):
        parse_mask("Male,Beard")
    with pytest.raises(MaskError, match="exactly 10 bits"):
        parse_mask("0101")
    with pytest.raises(MaskError):
        parse_mask([0, 2] + [0] * 8)


def test_mask_tensor():
    t = mask_tensor("a3gan-1", batch=3)
    assert t.shape == (3, 10) and t.dtype == torch.float32 and t[:, 4].tolist() == [1.0] * 3 and t.sum() == 3
