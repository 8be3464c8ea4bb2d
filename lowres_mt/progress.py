"""Progress for long work (training, scoring, generation) that also reads well in a log file.

In a terminal it is rich's live progress bar. When stderr is not a terminal (a log, `nohup`, CI)
rich draws nothing until the end, so this bar prints a plain line per task instead, at most every
`log_every` seconds and once when the task completes:

    training en-kgv-tell: 26/130, loss 1.958, tok/s 175, 150 s
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LOG_EVERY_S = 30.0


class LoggedProgress(Progress):
    """A rich `Progress` that writes plain lines when its console is not a terminal."""

    def __init__(self, *columns: ProgressColumn | str, console: Console | None = None,
                 log_every: float = LOG_EVERY_S, disable: bool = False, **kwargs):
        console = console or Console(stderr=True)
        super().__init__(*columns, console=console, disable=disable or not console.is_terminal, **kwargs)
        self.log_lines = not disable and not console.is_terminal
        self.log_every = log_every
        self._logged: dict[TaskID, float] = {}

    def add_task(self, description: str, *args, **kwargs) -> TaskID:
        task = super().add_task(description, *args, **kwargs)
        self._logged[task] = time.monotonic()
        return task

    def update(self, task_id: TaskID, *args, **kwargs) -> None:
        super().update(task_id, *args, **kwargs)
        self._log(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log(task_id)

    def _log(self, task_id: TaskID) -> None:
        if not self.log_lines:
            return
        task = self._tasks[task_id]
        now = time.monotonic()
        if now - self._logged[task_id] < self.log_every and not task.finished:
            return
        if task.finished and self._logged[task_id] == float("inf"):
            return  # the completion line is written once
        self._logged[task_id] = float("inf") if task.finished else now
        total = f"/{task.total:.0f}" if task.total is not None else ""
        fields = "".join(f", {key} {value}" for key, value in task.fields.items())
        self.console.print(f"{task.description}: {task.completed:.0f}{total}{fields}, "
                           f"{task.elapsed or 0:.0f} s", markup=False, highlight=False)


def bar(*fields: str, console: Console | None = None, enabled: bool = True,
        transient: bool = False) -> LoggedProgress:
    """The project's standard bar: description, bar, n/total, the named task fields, times."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               *(TextColumn(f"{name} {{task.fields[{name}]}}") for name in fields),
               TimeElapsedColumn(), TimeRemainingColumn()]
    return LoggedProgress(*columns, console=console, disable=not enabled, transient=transient)
