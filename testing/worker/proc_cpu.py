"""What a process has spent, read from /proc: its CPU, its threads' CPU, its peak memory (the real-time benches'
figures, `testing.worker.realtime`). Linux only; times in s, memory in MB."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process so far, MB (VmHWM from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU of a process so far, s (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu_s(pid: int) -> dict[tuple[int, int], float]:
    """User + system CPU of each live thread of a process so far, s, by (thread id, start time in clock ticks: an
    id may be reused by a later thread) (from /proc). A thread that has ended is no longer listed: its CPU is only
    in the process's total."""
    out: dict[tuple[int, int], float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[(int(task.name), int(fields[19]))] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def thread_split(
    pid: int, before: dict[tuple[int, int], float], after: dict[tuple[int, int], float], total_s: float
) -> dict[str, float]:
    """The worker's CPU over the streaming by thread, s: its main thread (deliveries, turns, live windows), the
    threads alive from start to end (paho's network loop), and, by difference, threads started or ended within it
    (each raw write's attempt runs in a thread of its own)."""
    main = sum(after[k] - before.get(k, 0.0) for k in after if k[0] == pid)
    lasting = sum(after[k] - before[k] for k in after if k in before and k[0] != pid)
    return {"main": main, "lasting": lasting, "short-lived": total_s - main - lasting}
