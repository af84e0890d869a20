"""The launcher of a run with several processes: `python -m tuitrain.trainer.multi RUN_DIR`.

torchrun (torch.distributed.run) starts one trainer process per GPU (`tuitrain.runs.trainer_process`, the
same entry a single-process run uses) with --standalone (one machine, a free port) and --max-restarts 0: a
rank that dies ends the run, it is not restarted into a state the others have left. This process stays
between the user and them: a stop (SIGTERM, Ctrl-C) becomes the run's own `stop` command, which rank 0
broadcasts, so every rank stops at the same step and rank 0 saves and backs up; and when torchrun reports
a failure that rank 0 could not write down (it was killed), the run's events get the failing rank's error.

Multi-node training (several machines) is accelerate's and torchrun's too: see docs/multi-gpu.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tuitrain.config import ConfigError, load_config
from tuitrain.runs import RunDir
from tuitrain.runs.pidfile import write_pidfile


def process_count(processes: int, gpus: list[int]) -> int:
    """distributed.processes with 0 resolved: one per listed GPU, else per visible GPU."""
    if processes:
        return processes
    if gpus:
        return len(gpus)
    import torch

    return max(torch.cuda.device_count(), 1)


def torchrun_command(run: RunDir, processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "--max-restarts=0", "-m", "tuitrain.runs.trainer_process", str(run.root)]


def report_unfinished(run: RunDir, code: int) -> None:
    """After torchrun failed: when the events do not end with a `finished` (rank 0 was killed before it could
    say so), add one naming the rank that failed, with its error."""
    from tuitrain.runs.control import ControlServer
    from tuitrain.runs.events import iter_events
    from tuitrain.trainer.distributed import error_file

    last: dict[str, Any] = {}
    step = 0
    for _, event in iter_events(run.events):
        last = event
        step = event.get("step", step) if isinstance(event.get("step"), int) else step
    if last.get("type") == "finished":
        return
    errors = sorted(run.root.glob("rank-*-error.txt"))
    killed = sorted(run.root.glob("rank-*.running"))  # ranks that never got to clear their marker
    if errors:
        rank = errors[0].name.split("-")[1]
        reason = f"rank {rank} failed: {error_file(run.root, int(rank)).read_text().strip()}"
    elif killed:
        rank = killed[0].name.split("-")[1].split(".")[0]
        reason = f"rank {rank} died without an error: killed, or out of host memory (the kernel's OOM killer)"
    else:
        reason = f"a training process died without a word (torchrun exit code {code}; killed? out of memory?)"
    server = ControlServer(run.events, None)
    server.emit("error", message=reason, traceback_path=str(run.log))
    server.emit("finished", status="failed", reason=reason, step=step)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    run = RunDir(Path(args[0]).resolve())
    try:
        config = load_config(run.config)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    d = config.distributed
    processes = process_count(d.processes, d.gpu_ids)
    env = dict(os.environ)
    if d.gpu_ids:
        env["CUDA_VISIBLE_DEVICES"] = d.gpus
    env["TUITRAIN_LAUNCHER"] = str(os.getpid())  # marks this run's processes (tests find rank 1 by it)
    env.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")  # a dead rank fails NCCL collectives, not hangs them
    from tuitrain.trainer.distributed import clear_rank_files

    clear_rank_files(run.root)  # a previous attempt's
    write_pidfile(run.pidfile)  # rank 0 takes over once it starts; until then `tuitrain runs` sees this process
    proc = subprocess.Popen(torchrun_command(run, processes), env=env, cwd=run.root)

    def stop(signum: int, frame: Any) -> None:
        from tuitrain.runs.control import send_command

        try:
            send_command(run.socket, "stop")  # rank 0 broadcasts it: every rank stops at the same step
        except OSError:
            proc.send_signal(signal.SIGTERM)  # no rank 0 listening yet: torchrun stops them

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    code = proc.wait()
    if code != 0:
        report_unfinished(run, code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
