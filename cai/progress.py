"""rich progress for generation stages: prompts/s and generated tokens/s while it runs."""
from __future__ import annotations

import sys
import time
from typing import Any, Dict

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


class StageProgress:
    """A progress bar over prompts that also shows the engine's token throughput; gives the final rates."""

    def __init__(self, node: str, total: int, done: int, engine: Any):
        self.node, self.total, self.done, self.engine = node, total, done, engine
        self.start_tokens = engine.stats.generated_tokens
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                                 disable=not sys.stderr.isatty())

    def __enter__(self) -> "StageProgress":
        self.started, self._first_done = time.perf_counter(), self.done
        self.progress.start()
        self.task = self.progress.add_task(self.node, total=self.total, completed=self.done, rate="")
        return self

    def advance(self, count: int) -> None:
        """Mark `count` more prompts done and refresh the rates."""
        self.done += count
        rates = self.metrics()
        text = f"{rates['prompts_per_s']:.2f} prompts/s"
        if rates["generated_tokens"]:  # scoring stages generate nothing (unless reasoning first): no '0 tok/s'
            text += f"  {rates['generated_tokens_per_s']:.0f} tok/s"
        self.progress.update(self.task, advance=count, rate=text)
        if not sys.stderr.isatty():
            console.log(f"{self.node}: {self.done}/{self.total} prompts, {text}")

    def metrics(self) -> Dict[str, float]:
        """Throughput of this run so far (resumed prompts not counted)."""
        seconds = max(time.perf_counter() - self.started, 1e-9)
        tokens = self.engine.stats.generated_tokens - self.start_tokens
        return {"generated_tokens": tokens, "generated_tokens_per_s": tokens / seconds,
                "prompts_per_s": (self.done - self._first_done) / seconds, "wall_s": seconds}

    def __exit__(self, *exc) -> None:
        self.progress.stop()
