"""Generator (Table 2), SCU (Eq. 6-7), STU and plain-skip ablations: shapes, parameter counts, numerics, grads."""

import pytest
import torch

from a3gan.config import ConfigError, load_config
from a3gan.filters import Upsample2x
from a3gan.nets import SCU, Generator, count_params
from a3gan.nets.generator import upconv


def _table2_encdec_params(w=1.0):
    enc = [3, 64, 128, 256, 512, 1024]
    p = sum(enc[i] * enc[i + 1] * 16 + 2 * enc[i + 1] for i in range(5))  # Conv(4,2) no bias + BN(γ, β)
    dec_in = [1024, 1536, 768, 384, 192]  # Table 2 decoder input widths
    dec_out = [1024, 512, 256, 128, 3]
    for i in range(4):
        p += dec_in[i] * dec_out[i] * 16 + 2 * dec_out[i]  # DeConv no bias + BN
    p += dec_in[4] * 3 * 16 + 3  # D5: DeConv with bias + Tanh
    return p


def test_paper_parameter_counts():
    G = Generator(load_config("paper").model)
    encdec = count_params(G.encoder) + count_params(G.decoder)
    assert (
        encdec == _table2_encdec_params() == 44_453_507
    )  # "about 44.5 M" of the earlier probe = Table 2 alone
    # SCU l (l = 1..4): W_T DeConv(C_{l+1}, C_l, 4) + W_f Conv(2 C_l, C_l, 3), both with bias
    ch = [64, 128, 256, 512, 1024]
    scu = sum(ch[l + 1] * ch[l] * 16 + ch[l] + 2 * ch[l] * ch[l] * 9 + ch[l] for l in range(4))
    assert count_params(G.skips) == scu == 17_409_920
    # AINet: Table 4 FCNet (with biases) + AffNet Linear(1024, 2*1024)
    dims = [512 + 10, 512, 512, 512, 1024, 1024, 1024]
    fc = sum(a * b + b for a, b in zip(dims[:-1], dims[1:], strict=True))
    assert count_params(G.ainet) == fc + 1024 * 2048 + 2048 == 5_516_800
    assert count_params(G) == 67_380_227


def test_scu_is_578_percent_of_stu():
    """Sec. 4.2: "The parameters of SCU are 57.8% of those of STU for the same network architecture settings"."""
    scu = count_params(Generator(load_config("paper").model).skips)
    stu = count_params(Generator(load_config("paper", ["skip=stu"]).model).skips)
    assert round(100 * scu / stu, 1) == 57.8


@pytest.mark.parametrize("preset,res", [("paper", 128), ("small", 64), ("tiny", 32)])
def test_shapes_and_range(preset, res):
    cfg = load_config(preset)
    G = Generator(cfg.model).eval()
    x = torch.rand(2, 3, res, res) * 2 - 1
    m = torch.tensor([[1.0] * 10, [0.0] * 10])
    with torch.no_grad():
        y = G(x, m)
    assert y.shape == (2, 3, res, res)
    assert y.min() >= -1 and y.max() <= 1


def test_encoder_feature_shapes_paper():
    G = Generator(load_config("paper").model).eval()
    feats = G.encode(torch.zeros(1, 3, 128, 128))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (64, 64, 64),
        (128, 32, 32),
        (256, 16, 16),
        (512, 8, 8),
        (1024, 4, 4),
    ]
    # decoder input widths of Table 2
    assert [blk[0].in_channels for blk in G.decoder] == [1024, 1536, 768, 384, 192]


def test_scu_equation_by_hand():
    """Eq. 6-7 on a 1-channel unit with hand-set weights."""
    scu = SCU(c_l=1, c_next=1, kernel=1)
    with torch.no_grad():
        scu.w_t.weight.fill_(0.5)  # each output pixel of the stride-2 deconv gets 0.5 * (one input pixel) ...
        scu.w_t.bias.zero_()
        scu.w_f.weight.copy_(torch.tensor([1.0, 2.0]).view(1, 2, 1, 1))
        scu.w_f.bias.fill_(-1.0)
    f_l = torch.full((1, 1, 2, 2), 3.0)
    f_next = torch.full((1, 1, 1, 1), 4.0)
    out, state = scu(f_l, f_next)
    # W_T ⊗_T F̂^{l+1}: 4x4 kernel, stride 2, padding 1 on a 1x1 input -> each of the 2x2 outputs sees one tap: 0.5*4 = 2
    t = scu.w_t(f_next)
    assert torch.allclose(t, torch.full((1, 1, 2, 2), 2.0))
    gate = torch.sigmoid(torch.tensor(1.0 * 3 + 2.0 * 2 - 1))  # σ(W_f [F^l, F̂_T]) = σ(6)
    assert torch.allclose(out, gate * 3.0)
    assert torch.equal(out, state)


@pytest.mark.parametrize(
    "overrides",
    [[], ["skip=stu"], ["skip=none"], ["use_mask=false"], ["inject=concat"], ["upsample=resize"],
     ["upsample=resize", "skip=stu"],
     ["upsample=bilinear"]],
    ids=["scu", "w/ STU", "w/o SCU", "w/o mask", "w/o AdaIN", "resize", "resize+STU", "bilinear"],
)
def test_ablation_variants_forward_backward(overrides):
    cfg = load_config("tiny", overrides)
    G = Generator(cfg.model)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    m = torch.bernoulli(torch.full((3, 10), 0.5))
    y = G(x, m)
    y.square().mean().backward()
    grads = [p.grad for p in G.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_mask_changes_output_unless_ablated():
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    z = torch.randn(1, 16)
    m0, m1 = torch.zeros(1, 10), torch.ones(1, 10)
    torch.manual_seed(0)
    G = Generator(load_config("tiny").model).eval()
    assert not torch.allclose(G(x, m0, z), G(x, m1, z))
    torch.manual_seed(0)
    G = Generator(load_config("tiny", ["use_mask=false"]).model).eval()
    assert torch.equal(G(x, m0, z), G(x, m1, z))


def test_z_changes_output_and_seed_controls_it():
    G = Generator(load_config("tiny").model).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    m = torch.zeros(2, 10)
    z1 = G.sample_z(2, generator=torch.Generator().manual_seed(7))
    z2 = G.sample_z(2, generator=torch.Generator().manual_seed(7))
    z3 = G.sample_z(2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(z1, z2) and not torch.equal(z1, z3)
    assert torch.equal(G(x, m, z1), G(x, m, z2))
    assert not torch.allclose(G(x, m, z1), G(x, m, z3))


def test_bad_arguments():
    G = Generator(load_config("tiny").model)
    with pytest.raises(ValueError, match="expects"):
        G(torch.zeros(1, 3, 64, 64), torch.zeros(1, 10))
    with pytest.raises(ValueError, match="mask"):
        G(torch.zeros(1, 3, 32, 32), torch.zeros(1, 9))
    with pytest.raises(ConfigError, match="skip"):
        load_config("tiny", ["skip=gru"])
    with pytest.raises(ConfigError, match="resolution"):
        load_config("tiny", ["resolution=40"])


def test_upconv_shapes_and_bad_mode():
    x = torch.randn(2, 8, 5, 7)
    for mode in ("deconv", "resize", "bilinear"):
        assert upconv(8, 4, mode)(x).shape == (2, 4, 10, 14)
    assert isinstance(upconv(8, 4), torch.nn.ConvTranspose2d)  # the paper's DeConv(4,2) keeps its weight names
    with pytest.raises(ValueError, match="upsampling"):
        upconv(8, 4, "bicubic")
    with pytest.raises(ConfigError, match="upsample"):
        load_config("tiny", ["upsample=bicubic"])


def test_resize_upsampling_cannot_make_a_checkerboard():
    """A constant feature map through a random DeConv(4,2) comes out with a period-2 pattern (its kernel
    overlaps unevenly); through nearest x2 + Conv(3,1) the interior stays constant, whatever the weights."""
    torch.manual_seed(0)
    x = torch.ones(1, 4, 8, 8)
    with torch.no_grad():
        dec = upconv(4, 1, "deconv")(x)[0, 0, 2:-2, 2:-2]
        rz = upconv(4, 1, "resize")(x)[0, 0, 2:-2, 2:-2]
    assert rz.std().item() < 1e-6
    assert dec.std().item() > 1e-3
    # the deconv pattern repeats every 2 pixels
    assert torch.allclose(dec[:-2], dec[2:], atol=1e-6) and torch.allclose(dec[:, :-2], dec[:, 2:], atol=1e-6)


def test_bilinear_upsampling_leaves_no_blocks():
    """A single bright pixel (a 2x2 block pattern's source) through nearest x2 + identity conv comes out as a flat
    2x2 block; through bilinear x2 it is spread smoothly (hand values: 1-D weights 0.75/0.25 -> 0.5625 centre)."""
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    outs = {}
    for mode in ("resize", "bilinear"):
        up = upconv(1, 1, mode, bias=False)
        with torch.no_grad():
            up[1].weight.zero_()
            up[1].weight[0, 0, 1, 1] = 1.0  # identity 3x3 kernel: the output is the upsampled map
            outs[mode] = up(x)[0, 0]
    assert torch.equal(outs["resize"][2:4, 2:4], torch.ones(2, 2)) and outs["resize"].sum().item() == 4.0
    b = outs["bilinear"]
    assert torch.allclose(b[2:4, 2:4], torch.full((2, 2), 0.5625))
    assert torch.isclose(b[1, 2], torch.tensor(0.1875)) and torch.isclose(b[1, 1], torch.tensor(0.0625))
    assert torch.isclose(b.sum(), torch.tensor(4.0))  # bilinear x2 keeps the mass of an interior pixel


def test_upsample_last_sets_only_the_output_layer():
    G = Generator(load_config("tiny", ["upsample=bilinear", "upsample_last=resize"]).model)
    ups = [m for m in G.modules() if isinstance(m, Upsample2x)]
    out_up = G.decoder[-1][0][0]
    assert out_up.mode == "nearest"
    assert all(m.mode == "bilinear" for m in ups if m is not out_up) and len(ups) == 4 + 3  # decoder + SCU W_T
    G.load_state_dict(Generator(load_config("tiny", ["upsample=resize"]).model).state_dict(), strict=True)
    y = G.eval()(torch.randn(2, 3, 32, 32), torch.zeros(2, G.cfg.n_attrs), torch.randn(2, G.cfg.z_dim))
    assert y.shape == (2, 3, 32, 32)
    with pytest.raises(ConfigError, match="upsample_last"):
        load_config("tiny", ["upsample_last=bicubic"])
    with pytest.raises(ConfigError, match="deconv"):
        load_config("tiny", ["upsample=bilinear", "upsample_last=deconv"])


def test_resize_checkpoint_loads_into_bilinear_generator():
    a = Generator(load_config("tiny", ["upsample=resize"]).model)
    b = Generator(load_config("tiny", ["upsample=bilinear"]).model)
    b.load_state_dict(a.state_dict(), strict=True)


def test_resize_generator_has_no_transposed_convolutions():
    G = Generator(load_config("tiny", ["upsample=resize"]).model)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    G = Generator(load_config("tiny").model)
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == 4 + 3  # decoder + SCU W_T


def test_chroma_blur_keeps_luma_and_grey_images():
    from a3gan.nets.generator import ChromaBlur

    torch.manual_seed(0)
    cb = ChromaBlur(1.0)
    grey = torch.rand(2, 1, 16, 16).expand(2, 3, 16, 16) * 2 - 1
    assert torch.allclose(cb(grey), grey, atol=1e-5)  # no chroma: nothing to blur
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y = cb(x)
    w = torch.tensor([0.299, 0.587, 0.114])
    luma = lambda t: torch.einsum("c,bchw->bhw", w, t)  # noqa: E731
    assert torch.allclose(luma(y), luma(x), atol=1e-5)
    assert not torch.allclose(y, x, atol=1e-2)
    # a constant colour is unchanged (the kernel sums to 1, reflect padding)
    const = torch.tensor([0.5, -0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    assert torch.allclose(cb(const), const, atol=1e-5)


def test_chroma_blur_hand_values():
    """A red/cyan column pair pattern along x with equal luma: sigma 1 blurs Cr like the 1-D kernel does.
    Kernel radius 3 (ceil(3 sigma)), weights exp(-t^2/2) / sum; the centre of an alternating +-1 pattern becomes
    sum_t (-1)^t g_t = (1 - 2 e^-0.5 + 2 e^-2 - 2 e^-4.5) / (1 + 2 e^-0.5 + 2 e^-2 + 2 e^-4.5)."""
    import math as _m

    from a3gan.nets.generator import ChromaBlur

    e = [_m.exp(-(t**2) / 2) for t in range(4)]
    expect = (e[0] - 2 * e[1] + 2 * e[2] - 2 * e[3]) / (e[0] + 2 * e[1] + 2 * e[2] + 2 * e[3])
    sign = torch.tensor([(-1.0) ** j for j in range(16)]).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    inv = torch.linalg.inv(torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]))
    ycc = torch.cat([torch.zeros(1, 2, 16, 16), 0.2 * sign], dim=1)  # Y = Cb = 0, Cr = +-0.2
    x = torch.einsum("ij,bjhw->bihw", inv, ycc)
    y = ChromaBlur(1.0)(x)
    cr = torch.einsum("j,bjhw->bhw", torch.tensor([0.5, -0.418688, -0.081312]), y)
    assert torch.allclose(cr[0, :, 8], torch.full((16,), 0.2 * expect), atol=1e-5)


def test_chroma_blur_in_generator_gradients_and_checkpoints():
    a = Generator(load_config("tiny", ["upsample=resize"]).model)
    b = Generator(load_config("tiny", ["upsample=resize", "chroma_blur=1.0"]).model)
    assert b.chroma is not None and a.chroma is None
    b.load_state_dict(a.state_dict(), strict=True)  # no parameters, no saved buffers
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    m = torch.zeros(2, a.cfg.n_attrs)
    z = torch.randn(2, a.cfg.z_dim)
    a.eval(), b.eval()
    ya, yb = a(x, m, z), b(x, m, z)
    assert yb.shape == ya.shape and not torch.allclose(ya, yb)
    yb.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ConfigError, match="chroma_blur"):
        load_config("tiny", ["chroma_blur=-1"])
    from a3gan.nets.generator import ChromaBlur

    with pytest.raises(ValueError, match="sigma"):
        ChromaBlur(0.0)
    with pytest.raises(ValueError, match="too large"):
        ChromaBlur(4.0)(torch.zeros(1, 3, 8, 8))
