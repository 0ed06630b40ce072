"""Local child processes of tandemd: started, watched, restarted with backoff and a budget."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from daemon.runtime.lifeline import PARENT_ENV

log = logging.getLogger("children")
RESTART_BUDGET = 5  # restarts within RESTART_WINDOW_S before a child is left down
RESTART_WINDOW_S = 60.0
BACKOFF_START_S = 1.0  # doubled after each restart, back to this after a stable run
BACKOFF_MAX_S = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: bool  # restart when it exits by itself (not for a finished file stream)
    restart_on_success: bool = False
    stdin: bytes | None = None  # written to the child's stdin at each start, then closed
    proc: subprocess.Popen[bytes] | None = None
    restarts: deque[float] = field(default_factory=deque)
    next_start: float | None = 0.0
    started_at: float = 0.0
    backoff_s: float = BACKOFF_START_S
    exit_code: int | None = None
    last_pid: int | None = None
    given_up: bool = False


class Children:
    def __init__(self, on_restart: Callable[[str], None] = lambda name: None) -> None:
        self.children: dict[str, Child] = {}
        self.stopping = False
        self.on_restart = on_restart

    def add(
        self,
        name: str,
        module_args: list[str],
        restart: bool,
        restart_on_success: bool = False,
        stdin: bytes | None = None,
    ) -> Child:
        argv = [sys.executable, "-m", *module_args]
        child = Child(name, argv, restart, restart_on_success, stdin)
        self.children[name] = child
        return child

    def tick(self, now: float) -> list[Child]:
        """Start due children and reap exited ones; returns the children that just exited."""
        exited: list[Child] = []
        for child in self.children.values():
            if child.proc is None:
                if child.next_start is not None and now >= child.next_start and not self.stopping:
                    self._start(child, now)
                continue
            code = child.proc.poll()
            if code is None:
                continue
            child.proc, child.exit_code = None, code
            exited.append(child)
            self._after_exit(child, now)
        return exited

    def alive(self) -> list[Child]:
        return [c for c in self.children.values() if c.proc is not None and c.proc.poll() is None]

    def kill(self, name: str) -> None:
        """SIGKILL a child that stopped answering (a stopped or wedged process ignores
        SIGTERM); it is reaped and restarted as if it had crashed, within its budget."""
        child = self.children.get(name)
        if child is None or child.proc is None or child.proc.poll() is not None:
            return
        log.warning("%s (pid %d) stopped answering: killed", name, child.proc.pid)
        child.proc.kill()

    def terminate_all(self) -> None:
        self.stopping = True
        for child in self.alive():
            assert child.proc is not None
            child.proc.terminate()

    def wait_all(self, timeout_s: float) -> None:
        """Wait for every child to exit, then SIGKILL all that are left at once."""
        deadline = time.monotonic() + timeout_s
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        left = self.alive()
        for child in left:
            assert child.proc is not None
            log.warning("%s did not stop in time: killed", child.name)
            child.proc.kill()
        for child in left:
            assert child.proc is not None
            child.proc.wait()

    def _start(self, child: Child, now: float) -> None:
        env = dict(os.environ, **{PARENT_ENV: str(os.getpid())})
        # Own process group: a Ctrl-C in the terminal reaches tandemd, which stops them in order.
        stdin = subprocess.PIPE if child.stdin is not None else None
        child.proc = subprocess.Popen(child.argv, env=env, process_group=0, stdin=stdin)
        if child.proc.stdin is not None:
            # A few KiB: fits the pipe's buffer, so this never waits on the child.
            child.proc.stdin.write(child.stdin or b"")
            child.proc.stdin.close()
        child.last_pid = child.proc.pid
        child.next_start, child.started_at = None, now
        log.info("started %s (pid %d)", child.name, child.proc.pid)

    def _after_exit(self, child: Child, now: float) -> None:
        code = child.exit_code
        if self.stopping:
            return
        if not child.restart or (code == 0 and not child.restart_on_success):
            log.info("%s exited with code %s", child.name, code)
            return
        if now - child.started_at >= RESTART_WINDOW_S:
            # It ran a whole window: this exit is a new incident, not part of a crash loop.
            child.backoff_s = BACKOFF_START_S
        while child.restarts and now - child.restarts[0] > RESTART_WINDOW_S:
            child.restarts.popleft()
        if len(child.restarts) >= RESTART_BUDGET:
            child.given_up = True
            log.error(
                "%s exited with code %s; %d restarts in %.0f s: left down",
                child.name,
                code,
                RESTART_BUDGET,
                RESTART_WINDOW_S,
            )
            return
        child.restarts.append(now)
        child.next_start = now + child.backoff_s
        log.warning(
            "%s exited with code %s; restarting in %.1f s", child.name, code, child.backoff_s
        )
        child.backoff_s = min(BACKOFF_MAX_S, child.backoff_s * 2)
        self.on_restart(child.name)
