"""Readers of other frameworks' option-file dialects, translated into irframe's native options.

* :mod:`irframe.compat.basicsr`: BasicSR / Restormer option files (``network_g``, ``optim_g``, ...).
"""
