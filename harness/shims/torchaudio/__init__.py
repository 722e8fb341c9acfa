"""Placeholder torchaudio (see ``_ex4d_placeholder``): imports succeed, any use fails with ImportError."""

import sys

from _ex4d_placeholder import make_package

make_package(sys.modules[__name__])
