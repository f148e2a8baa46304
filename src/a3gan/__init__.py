"""a3gan: attribute-aware face de-identification (A3GAN, ACM MM 2022)."""

__version__ = "0.1.0"
