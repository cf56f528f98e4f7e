"""Degradations that turn clean images into training inputs, one module per family.

Importing this package registers every family in ``DEGRADATIONS`` (the core's builtins import it on
the first registry lookup). Each degradation is ``deg(img, rng) -> img`` on float32 ``HWC`` images
in ``[0, 1]`` with a :class:`numpy.random.Generator`; see :mod:`.base` for the contract.

============================  ===================================================================
``BicubicDownsample``         MATLAB-compatible bicubic downsampling (:func:`imresize`)
``GaussianNoise``             additive Gaussian noise, fixed ``sigma`` or blind ``sigma_range``
``RainStreaks``               synthetic rain streaks (screen blend)
``Haze``                      atmospheric scattering model with a depth proxy
``MotionBlur``/``DefocusBlur``  linear motion and disk (out-of-focus) blur
``JPEGCompression``           JPEG encode/decode at a quality
``LowLight``                  gamma + gain darkening with noise
``Compose``/``RandomChoice``  pipelines built from option mappings
``RealESRGANDegradation``     Real-ESRGAN's two-stage pipeline; its pieces ``RandomKernelBlur``,
                              ``RandomResize``, ``GaussianPoissonNoise``, ``SincFilter``, ``USMSharp``
============================  ===================================================================
"""

from __future__ import annotations

from irframe.data.degradations.base import Degradation, Param, check_image, make_param
from irframe.data.degradations.blur import DefocusBlur, MotionBlur, disk_kernel, line_kernel
from irframe.data.degradations.compose import Compose, RandomChoice, build_degradation
from irframe.data.degradations.haze import Haze, depth_proxy
from irframe.data.degradations.jpeg import JPEGCompression
from irframe.data.degradations.lowlight import LowLight
from irframe.data.degradations.noise import GaussianNoise
from irframe.data.degradations.rain import RainStreaks
from irframe.data.degradations.realesrgan import (
    GaussianPoissonNoise,
    RandomKernelBlur,
    RandomResize,
    RealESRGANDegradation,
    SincFilter,
    USMSharp,
)
from irframe.data.degradations.resize import BicubicDownsample, imresize

__all__ = [
    "BicubicDownsample",
    "Compose",
    "DefocusBlur",
    "Degradation",
    "GaussianNoise",
    "GaussianPoissonNoise",
    "Haze",
    "JPEGCompression",
    "LowLight",
    "MotionBlur",
    "Param",
    "RainStreaks",
    "RandomChoice",
    "RandomKernelBlur",
    "RandomResize",
    "RealESRGANDegradation",
    "SincFilter",
    "USMSharp",
    "build_degradation",
    "check_image",
    "depth_proxy",
    "disk_kernel",
    "imresize",
    "line_kernel",
    "make_param",
]
