"""AWS data collector for the Devo platform, built on Apache Beam."""

__version__ = "0.1.0"
