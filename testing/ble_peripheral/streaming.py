"""What every emulated kit does with its sensors' IMU packets, whatever BLE stack carries them (the BlueZ kit
in `kit.py`, the Bumble kit in `bumble_kit.py`): wait until a packet is due, and stop the streaming tasks.

Times are host `time.monotonic_ns` (ns), the kits' sensor clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from .sensor import EmulatedSensor, OutgoingPacket

__all__ = ["due_packets", "stop_tasks"]


async def due_packets(sensor: EmulatedSensor, wake: asyncio.Event, link_ready: bool) -> list[OutgoingPacket]:
    """The sensor's packets due now, oldest first. When none is due, or the link cannot take one
    (`link_ready` False: no link, nobody subscribed), sleep until the next is due or `wake` is set (a link,
    subscription or command changed) and return none: the caller looks again."""
    due = sensor.next_due_ns()
    if due is None or not link_ready:
        wake.clear()
        await wake.wait()
        return []
    delay_s = (due - time.monotonic_ns()) / 1e9
    if delay_s > 0:
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay_s)
        return []
    return sensor.take_due(time.monotonic_ns())


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the kit's tasks and wait for each to end (whatever it ended with); empties `tasks`."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    tasks.clear()
