"""The package version, in one place (imported by the modules that stamp it into files)."""

__version__ = "0.1.0"
