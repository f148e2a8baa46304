"""Networks of the paper: Generator with SCU skips (Table 2), AINet (Table 4), Discriminator (Table 3)."""

from a3gan.nets.ainet import AINet, FCNet, adain
from a3gan.nets.discriminator import Discriminator
from a3gan.nets.generator import SCU, STU, Generator, PlainSkip

__all__ = ["AINet", "FCNet", "adain", "Discriminator", "Generator", "SCU", "STU", "PlainSkip", "count_params"]


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())
