"""lowres-mt: teach small language models to translate low-resource languages."""

__version__ = "0.1.0"
