"""Growing a trained G/D to a larger width (Net2Net "wider", zero-output form): same function, old weights in
their segments, new inputs zeroed, new capacity trainable, bad arguments refused."""

import dataclasses

import pytest
import torch

from a3gan.config import load_config
from a3gan.nets import Discriminator, Generator
from a3gan.nets.grow import growable, widen_state_dict

VARIANTS = [
    {},  # the small preset's own choices on the tiny net: bilinear up-convolutions, SCU, AdaIN
    {"upsample": "deconv", "upsample_last": ""},  # Table 2: ConvTranspose2d weights are (in, out, k, k)
    {"skip": "stu"},
    {"skip": "none"},
    {"inject": "concat"},
    {"use_mask": False},
]


def _pair(extra: dict, width=(1 / 16, 1 / 8), ainet_width=(1 / 16, 1 / 8), seed=0):
    kw = {"upsample": "bilinear", "upsample_last": "resize", **extra}
    base = dataclasses.replace(load_config("tiny").model, **kw)
    src = dataclasses.replace(base, width=width[0], ainet_width=ainet_width[0])
    dst = dataclasses.replace(base, width=width[1], ainet_width=ainet_width[1])
    torch.manual_seed(seed)
    return src, dst


def _perturb(net: torch.nn.Module) -> None:
    """Move every parameter and BN statistic off its init so that 'kept' cannot pass by accident."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                t.add_(0.1 * torch.randn(t.shape, generator=g))
                if name.endswith("running_var"):
                    t.abs_().add_(0.5)


def _grow(src_cfg, dst_cfg, net_cls, tag):
    old, new = net_cls(src_cfg), net_cls(dst_cfg)
    _perturb(old)
    new.load_state_dict(widen_state_dict(old.state_dict(), src_cfg, new.state_dict(), dst_cfg, tag))
    return old, new


@pytest.mark.parametrize("extra", VARIANTS, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()) or "small")
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_grown_generator_computes_the_same_image(extra, mode):
    src, dst = _pair(extra)
    old, new = _grow(src, dst, Generator, "G")
    assert sum(p.numel() for p in new.parameters()) > 1.5 * sum(p.numel() for p in old.parameters())
    getattr(old, mode)(), getattr(new, mode)()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    m = torch.tensor([[1.0] * 10, [0.0] * 10, [1.0, 0.0] * 5])
    z = torch.randn(3, src.z_dim)
    with torch.no_grad():
        a, b = old(x, m, z), new(x, m, z)
    assert (a - b).abs().max() < 1e-5
    # and the output depends on z and x at all (a vacuous net would pass the line above)
    with torch.no_grad():
        assert (new(x, m, torch.randn(3, src.z_dim)) - b).abs().max() > 1e-4


@pytest.mark.parametrize("d_norm_last", [False, True])
def test_grown_discriminator_computes_the_same_scores(d_norm_last):
    src, dst = _pair({"d_norm_last": d_norm_last})
    old, new = _grow(src, dst, Discriminator, "D")
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    (c0, a0), (c1, a1) = old(x), new(x)
    assert torch.allclose(c0, c1, atol=1e-5) and torch.allclose(a0, a1, atol=1e-5)


def test_grown_ainet_only_widens_the_mlp():
    """ainet_width alone grows FCNet/AffNet's input; the encoder and decoder keep their shapes and values."""
    src, dst = _pair({}, width=(1 / 16, 1 / 16), ainet_width=(1 / 16, 1 / 4))
    assert growable(src, dst)
    old, new = _grow(src, dst, Generator, "G")
    for k, v in old.state_dict().items():
        if not k.startswith("ainet."):
            assert torch.equal(new.state_dict()[k], v), k
    x, m, z = torch.rand(2, 3, 32, 32), torch.ones(2, 10), torch.randn(2, src.z_dim)
    old.eval(), new.eval()
    with torch.no_grad():
        assert (old(x, m, z) - new(x, m, z)).abs().max() < 1e-5


def test_segments_are_kept_in_place_by_hand():
    """AffNet's output is [f_a,s | f_a,b] (C_L each): old rows 0..C-1 stay at 0..C-1 and old rows C..2C-1 move to
    C'..C'+C-1; SCU W_f reads [F^l, W_T F̂^{l+1}]: old columns of the second half move from C_l to C_l'."""
    src, dst = _pair({})
    old, new = _grow(src, dst, Generator, "G")
    c, c2 = old.enc_channels[-1], new.enc_channels[-1]  # tiny has 4 levels: 512/16 = 32 -> 64
    assert (c, c2) == (32, 64)
    wo, wn = old.ainet.affnet.weight.detach(), new.ainet.affnet.weight.detach()
    fo = wo.shape[1]
    assert torch.equal(wn[:c, :fo], wo[:c]) and torch.equal(wn[c2 : c2 + c, :fo], wo[c:])
    assert torch.equal(new.ainet.affnet.bias[c2 : c2 + c], old.ainet.affnet.bias[c:])
    assert torch.all(wn[:, fo:] == 0)  # reads new FCNet units: zero
    assert not torch.all(wn[c:c2, :fo] == 0)  # new scale rows: fresh init, not zero
    assert torch.all(new.ainet.affnet.bias[c:c2] == 1) and torch.all(new.ainet.affnet.bias[c2 + c :] == 0)
    # SCU at level 0: C_0 = 64/16 = 4 -> 8
    wf_o, wf_n = old.skips[0].w_f.weight.detach(), new.skips[0].w_f.weight.detach()
    l0, l1 = old.enc_channels[0], new.enc_channels[0]
    assert (l0, l1) == (4, 8)
    assert torch.equal(wf_n[:l0, :l0], wf_o[:, :l0]) and torch.equal(wf_n[:l0, l1 : l1 + l0], wf_o[:, l0:])
    assert torch.all(wf_n[:, l0:l1] == 0) and torch.all(wf_n[:, l1 + l0 :] == 0)
    # a BatchNorm's statistics: old channels kept, new ones at their fresh values
    bn_o, bn_n = old.encoder[1][1], new.encoder[1][1]
    n = bn_o.running_var.numel()
    assert torch.equal(bn_n.running_var[:n], bn_o.running_var) and torch.all(bn_n.running_var[n:] == 1)


def test_new_capacity_receives_gradient_at_once():
    """The zeroed input columns get a non-zero gradient in the first backward pass, so the grown net can use them."""
    src, dst = _pair({})
    _, new = _grow(src, dst, Generator, "G")
    x, m, z = torch.rand(4, 3, 32, 32) * 2 - 1, torch.ones(4, 10), torch.randn(4, src.z_dim)
    new.train()
    (new(x, m, z) ** 2).mean().backward()
    w = new.decoder[1][0][1].weight  # D2's conv reads [D1 output | F̂]; D1's new channels are zero-read
    c_old = Generator(src).enc_channels[-1]
    c_new = new.enc_channels[-1]
    assert torch.all(w.detach()[:, c_old:c_new] == 0)
    assert w.grad[:, c_old:c_new].abs().sum() > 0


def test_bad_arguments():
    src, dst = _pair({})
    G_src, G_dst = Generator(src), Generator(dst)
    with pytest.raises(ValueError, match="net must be"):
        widen_state_dict(G_src.state_dict(), src, G_dst.state_dict(), dst, "X")
    with pytest.raises(ValueError, match="larger width"):  # narrowing
        widen_state_dict(G_dst.state_dict(), dst, G_src.state_dict(), src, "G")
    other = dataclasses.replace(dst, z_dim=src.z_dim * 2)
    assert not growable(src, other) and not growable(src, src)
    with pytest.raises(ValueError, match="larger width"):
        widen_state_dict(G_src.state_dict(), src, Generator(other).state_dict(), other, "G")
    with pytest.raises(ValueError, match="different tensors"):
        widen_state_dict(Discriminator(src).state_dict(), src, G_dst.state_dict(), dst, "G")
