"""recexp: find out which way of expanding, synthesising, balancing or re-weighting training samples
makes a recommendation model better, on your data."""

__version__ = "0.1.0"
