"""A fake trainer: a real process that speaks the run protocol, without torch.

    python -m tests.dashboard.fake_trainer RUN_DIR [--steps N] [--rate R] [--history N] ...

It writes the PID file, listens on the run's socket through the real
ControlServer, emits started / step / memory / epoch / sample / saved / backup /
paused / resumed / log / warning / error / finished, obeys every command, and
appends each command it receives to RUN_DIR/commands.txt so tests can check what
the dashboard sent. The dashboard benchmark drives it at 1,000 events a second.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

from PIL import Image

from tuitrain.runs.control import ControlServer
from tuitrain.runs.events import encode_event, make_event
from tuitrain.runs.layout import RunDir
from tuitrain.runs.pidfile import write_pidfile

PROMPTS = ["a red square with a blue mark", "a photo of a cat", "a lighthouse at dusk"]


def loss_at(step: int, rng: random.Random) -> float:
    return 0.05 + 0.5 * math.exp(-step / 300) + rng.random() * 0.05


def write_history(run: RunDir, events: int, steps_per_epoch: int, total_steps: int) -> int:
    """A long past written straight to the file (what a replay reads); returns the last step."""
    rng = random.Random(0)
    step = 0
    with open(run.events, "ab") as fh:
        fh.write(encode_event(make_event("started", run=run.name, total_steps=total_steps,
                                         total_epochs=math.ceil(total_steps / steps_per_epoch),
                                         steps_per_epoch=steps_per_epoch, pid=os.getpid(), family="sd15",
                                         method="lora", device="cpu", dtype="float32")))
        written = 1
        while written < events:
            step += 1
            fh.write(encode_event(make_event("step", step=step, epoch=(step - 1) // steps_per_epoch + 1,
                                             loss=loss_at(step, rng), lr=1e-4, grad_norm=rng.random(),
                                             it_per_s=1000.0)))
            written += 1
            if step % 10 == 0 and written < events:
                fh.write(encode_event(make_event("memory", rss=(500 + step % 100) * 2**20)))
                written += 1
    return step


class Fake:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = RunDir(Path(args.run).resolve())
        self.run.create_folders()
        self.rng = random.Random(1)
        self.server = ControlServer(self.run.events, self.run.socket)
        self.step = args.start_step
        self.paused = False
        self.stop = False

    def emit(self, type_: str, **fields: object) -> None:
        self.server.emit(type_, **fields)

    @property
    def epoch(self) -> int:
        return self.step // self.args.steps_per_epoch

    def sample(self) -> None:
        for index, prompt in enumerate(PROMPTS[: self.args.prompts]):
            path = self.run.samples / f"step{self.step:06d}-e{self.epoch:04d}-p{index:02d}.png"
            shade = (self.step * 37 + index * 80) % 256
            Image.new("RGB", (64, 64), (shade, 255 - shade, 90 + 40 * index)).save(path)
            self.emit("sample", step=self.step, epoch=self.epoch, path=str(path), prompt=prompt, index=index)

    def save(self) -> None:
        path = self.run.output / f"{self.run.name}-step{self.step:06d}.safetensors"
        path.write_bytes(b"fake")
        self.emit("saved", step=self.step, epoch=self.epoch, path=str(path), final=False)

    def backup(self) -> None:
        path = self.run.checkpoints / f"backup-step{self.step:06d}"
        path.mkdir(exist_ok=True)
        self.emit("backup", step=self.step, epoch=self.epoch, path=str(path))

    def commands(self) -> None:
        while True:
            for cmd in self.server.poll():
                with open(self.run.root / "commands.txt", "a") as fh:
                    fh.write(cmd + "\n")
                if cmd == "pause" and not self.paused:
                    self.paused = True
                    self.emit("paused", step=self.step)
                elif cmd == "resume" and self.paused:
                    self.paused = False
                    self.emit("resumed", step=self.step)
                elif cmd == "stop":
                    self.stop = True
                elif cmd == "save":
                    self.save()
                elif cmd == "sample":
                    self.sample()
                elif cmd == "backup":
                    self.backup()
            if not self.paused or self.stop:
                return
            time.sleep(0.02)

    def train(self) -> int:
        a = self.args
        self.emit("started", run=self.run.name, total_steps=a.steps, total_epochs=math.ceil(a.steps / a.steps_per_epoch),
                  steps_per_epoch=a.steps_per_epoch, pid=os.getpid(), resumed_from=a.start_step or None,
                  family="sd15", method="lora", device="cpu", dtype="float32")
        self.emit("log", level="info", message="fake trainer ready")
        print("fake trainer: started", flush=True)
        interval = 1.0 / a.rate
        next_at = time.monotonic()
        while self.step < a.steps:
            self.commands()
            if self.stop:
                self.save()
                self.emit("finished", status="stopped", reason="stopped by request", step=self.step)
                return 0
            self.step += 1
            self.emit("step", step=self.step, epoch=self.epoch + 1, loss=loss_at(self.step, self.rng), lr=1e-4,
                      grad_norm=self.rng.random(), it_per_s=a.rate)
            if self.step % 10 == 0:
                self.emit("memory", rss=(500 + self.step % 50) * 2**20)
            if a.warn_at == self.step:
                self.emit("warning", message="loss spiked at this step")
                print("UserWarning: something odd", file=sys.stderr, flush=True)
            if a.error_at == self.step:
                self.emit("error", message="CUDA out of memory (fake)", traceback_path="")
                print("Traceback (most recent call last):\nRuntimeError: CUDA out of memory (fake)", flush=True)
                if a.die_after_error:
                    os.kill(os.getpid(), 9)
            if self.step % a.steps_per_epoch == 0:
                self.emit("epoch", epoch=self.epoch, step=self.step)
                if a.sample_every_epochs and self.epoch % a.sample_every_epochs == 0:
                    self.sample()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1:
                next_at = time.monotonic()  # far behind (a loaded machine): do not burst to catch up
        if a.hang:
            while not self.stop:  # keep the process alive, e.g. for a SIGKILL test
                self.commands()
                time.sleep(0.02)
        self.save()
        self.emit("finished", status="completed", reason="", step=self.step)
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rate", type=float, default=50.0, help="steps per second")
    p.add_argument("--steps-per-epoch", type=int, default=10)
    p.add_argument("--sample-every-epochs", type=int, default=0)
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--history", type=int, default=0, help="write this many past events first")
    p.add_argument("--start-step", type=int, default=0)
    p.add_argument("--warn-at", type=int, default=-1)
    p.add_argument("--error-at", type=int, default=-1)
    p.add_argument("--die-after-error", action="store_true")
    p.add_argument("--hang", action="store_true", help="after the last step, wait for stop")
    args = p.parse_args(argv)
    run = RunDir(Path(args.run).resolve())
    run.create_folders()
    write_pidfile(run.pidfile)
    if args.history:
        args.start_step = write_history(run, args.history, args.steps_per_epoch, args.steps)
    fake = Fake(args)
    try:
        return fake.train()
    finally:
        fake.server.close()


if __name__ == "__main__":
    raise SystemExit(main())
