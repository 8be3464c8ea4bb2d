"""Progress in logs: plain lines when stderr is not a terminal, the completion line once."""

import io

from rich.console import Console

from lowres_mt.progress import bar


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=120), buffer


def test_log_lines_when_not_a_terminal():
    console, buffer = _console(False)
    with bar("loss", console=console) as progress:
        progress.log_every = 0.0
        task = progress.add_task("training toy", total=3, loss="-")
        for step in range(3):
            progress.update(task, completed=step + 1, loss=f"{2.0 - step:.3f}")
        progress.update(task, completed=3, loss="0.000")  # finished already: no second final line
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("training toy: 1/3, loss 2.000, ")
    assert [line.split(",")[0] for line in lines] == ["training toy: 1/3", "training toy: 2/3", "training toy: 3/3"]


def test_lines_are_rate_limited_but_completion_is_logged():
    console, buffer = _console(False)
    with bar(console=console) as progress:
        task = progress.add_task("scoring", total=100)
        for _ in range(100):
            progress.advance(task)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scoring: 100/100, ")


def test_disabled_or_terminal_writes_no_log_lines():
    console, buffer = _console(False)
    with bar(console=console, enabled=False) as progress:
        task = progress.add_task("quiet", total=1)
        progress.advance(task)
    assert buffer.getvalue() == ""
    console, buffer = _console(True)
    with bar(console=console, transient=True) as progress:
        task = progress.add_task("live", total=1)
        progress.advance(task)
    assert "live: 1/1" not in buffer.getvalue()
