"""Run the project's entry scripts (``train.py`` ...) in child processes, as a user would,
without paying the 20 s import of Lightning for each one.

Children are forked from a forkserver that imported the scripts' dependencies once; each
child then runs the script as ``__main__`` with its own argv, folder and environment, its
output in a log file. A child can be signalled (SIGTERM, SIGKILL) like any process.
"""

import atexit
import multiprocessing
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_context: ForkServerContext | None = None


def context() -> ForkServerContext:
    """The forkserver context, its server preloading the training stack."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(
            ["landslide.training", "landslide.mapping.command", "mlflow_preload"]
        )
    return _context


def _run_script(
    script: str, argv: Sequence[str], cwd: str, env: Mapping[str, str], log: str
) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    # The script's absolute path, as `python /path/to/train.py` gives: Lightning's DDP
    # starts its other ranks by running sys.argv[0] again.
    sys.argv = [str(ROOT / script), *argv]
    sys.path.insert(0, str(ROOT))
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:
        # What an interpreter's exit runs, which a multiprocessing child skips: without it,
        # joblib's idle workers (stopped from threading's exit hooks) keep it alive for
        # their five-minute timeout.
        threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's own call
        atexit._run_exitfuncs()


@dataclass
class Entry:
    """A started entry script."""

    process: multiprocessing.process.BaseProcess
    log: Path

    def wait(self, timeout: float = 600) -> int:
        """Wait for the end; its exit status (negative: killed by that signal)."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
            raise TimeoutError(f"still running after {timeout} s:\n{self.output()}")
        return self.process.exitcode

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)


def start(
    script: str,
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> Entry:
    """Start ``python <script> <argv>`` in ``cwd`` with ``env`` added to the environment."""
    log = log or cwd / f"{Path(script).stem}-{time.monotonic_ns()}.log"
    environment = {**os.environ, **(env or {})}
    process = context().Process(
        target=_run_script, args=(script, list(argv), str(cwd), environment, str(log))
    )
    process.start()
    return Entry(process, log)


def run(
    script: str,
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> tuple[int, str]:
    """Run a script to its end: its exit status and output."""
    entry = start(script, argv, cwd, env)
    code = entry.wait(timeout)
    return code, entry.output()


def wait_for(condition: Callable[[], bool], timeout: float = 300, what: str = "") -> None:
    """Poll ``condition`` every 20 ms until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what or condition}")
        time.sleep(0.02)
