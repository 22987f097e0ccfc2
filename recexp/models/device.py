"""The one place that decides where tensors live."""

from __future__ import annotations

import torch

from recexp.errors import InvalidParameterError
from recexp.i18n import _

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Device choices that work on this machine: ``"auto"``, ``"cpu"``, then ``"cuda"`` / ``"mps"`` if present."""
    return ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])


def resolve_device(preference: str = "auto") -> torch.device:
    """The torch device to train on.

    Parameters
    ----------
    preference : {"auto", "cuda", "mps", "cpu"} or a torch device string such as ``"cuda:1"``
        ``"auto"`` takes CUDA when a GPU is visible, then Apple's MPS, then the CPU. Naming a device
        that is not available raises rather than silently falling back, so a run never reports a
        device it did not use.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if not isinstance(preference, str):
        raise InvalidParameterError(
            _("device must be one of {device_choices}, but got {preference!r}. Use 'auto' to pick one.").format(
              device_choices=', '.join(DEVICE_CHOICES), preference=preference))
    wanted = preference.strip().lower()
    if wanted == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise InvalidParameterError(
            _("device must be one of {device_choices}, but got {preference!r}. Use 'auto' to pick the best "
              "available one.").format(
              device_choices=', '.join(DEVICE_CHOICES), preference=preference)) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            _("device 'cuda' was requested, but this machine has no usable CUDA GPU. Use 'auto' or 'cpu'."))
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InvalidParameterError(
            _("device {preference!r} was requested, but only {cuda} GPU(s) are visible. Use 'cuda' or 'auto'.").format(
              preference=preference, cuda=torch.cuda.device_count()))
    if device.type == "mps" and not _mps_available():
        raise InvalidParameterError(
            _("device 'mps' was requested, but Apple's MPS backend is not available here. Use 'auto' or 'cpu'."))
    if device.type not in {"cuda", "mps", "cpu"}:
        raise InvalidParameterError(
            _("device must be one of {device_choices}, but got {preference!r}. Use 'auto'.").format(
              device_choices=', '.join(DEVICE_CHOICES), preference=preference))
    return device


def describe_device(device: torch.device | str) -> str:
    """A short human label for ``device``: ``"cpu (2 threads)"``, ``"cuda:0 (NVIDIA H100 80GB HBM3)"``, ``"mps"``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
