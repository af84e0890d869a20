"""`tuitrain demo`: a run on generated data and a tiny local model, offline, on the CPU."""

from tuitrain.demo.setup import NOTICE, DemoRun, prepare_demo

__all__ = ["NOTICE", "DemoRun", "prepare_demo"]
