"""The training log (metrics.jsonl, one JSON object per event) and its plot (loss.png)."""

from __future__ import annotations

from pathlib import Path

from lowres_mt.io import atomic_path, read_jsonl, write_jsonl


class MetricsLog:
    """Events kept in memory and rewritten atomically on every append (the log is small)."""

    def __init__(self, path: Path, *, resume_step: int | None = None):
        self.path = path
        self.events: list[dict] = []
        if resume_step is not None and path.is_file():
            # events after the checkpoint belong to steps that are trained again
            self.events = [e for e in read_jsonl(path) if e.get("step", 0) <= resume_step]

    def append(self, event: dict, *, write: bool = True) -> None:
        self.events.append(event)
        if write:
            self.flush()

    def flush(self) -> None:
        write_jsonl(self.path, self.events)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == kind]


def plot_loss(events: list[dict], path: Path, title: str = "") -> None:
    """Training loss (and dev loss / dev chrF when logged) against optimizer steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [e for e in events if e.get("event") == "train"]
    dev = [e for e in events if e.get("event") == "eval" and e.get("dev_loss") is not None]
    chrf = [e for e in events if e.get("event") == "eval" and e.get("dev_chrf") is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([e["step"] for e in train], [e["loss"] for e in train], label="train loss", lw=1)
    if dev:
        ax.plot([e["step"] for e in dev], [e["dev_loss"] for e in dev], "o-", label="dev loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    if chrf:
        twin = ax.twinx()
        twin.plot([e["step"] for e in chrf], [e["dev_chrf"] for e in chrf], "s--", color="tab:green",
                  label="dev chrF")
        twin.set_ylabel("dev chrF")
        twin.legend(loc="upper right")
    ax.legend(loc="upper left" if chrf else "best")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
