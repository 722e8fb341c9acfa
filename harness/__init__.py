"""Development harness: the pinned ComfyUI host and tiny-model fixtures.

Shared by the tests, the demo and the benchmarks. Not part of the node pack at run time.
"""
