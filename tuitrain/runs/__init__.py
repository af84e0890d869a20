"""Run directories: the contract between the TUI, the CLI and the trainer process."""

from tuitrain.runs.layout import RunDir, valid_run_name
from tuitrain.runs.state import RunState, RunStatus, run_status
from tuitrain.runs.workspace import find_run, list_runs, resolve_workspace

__all__ = [
    "RunDir",
    "RunState",
    "RunStatus",
    "find_run",
    "list_runs",
    "resolve_workspace",
    "run_status",
    "valid_run_name",
]
