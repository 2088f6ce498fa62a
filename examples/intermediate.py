"""Intermediate usage: a health check that replaces crashed image processors, priority, and run_task.

The Python take on the Go library's ``examples/intermediate``. Two workers
each hold an ImageProcessor. Three tasks are queued at once: a normal resize
that sometimes fails with a *healthy* error (the task fails, the processor is
kept), a high-priority thumbnail that goes ahead of the queue, and a task that
sometimes crashes its processor (``check_health`` returns False: the processor
is destroyed, a fresh one replaces it, and the task runs again, at most once
more since ``max_retries=1``). Meanwhile ``run_task`` makes a preview at once,
bypassing the queues, on the resource kept for it (``resource_pool_size=1``).

Run: python examples/intermediate.py [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
from collections.abc import Awaitable
from dataclasses import dataclass

from tasker_async import AsyncManager, Config, MaxRetriesExceededError


class ImageCorrupted(Exception):
    """The image could not be processed; the processor itself is fine."""


class ProcessorCrash(Exception):
    """The processor is broken; only a new one will do."""


@dataclass
class ImageProcessor:
    """A stand-in for a connection to an image processing service."""

    id: int


@dataclass
class Dice:
    """Every random choice of the example, drawn up front so ``--seed`` reproduces a run.

    Drawing inside the tasks would tie the outcome to the order in which the
    event loop happens to run them.
    """

    ids: random.Random
    resize_corrupts: bool
    crash_on_run: list[bool]  # one draw per run of the problematic task: the first run and its one retry

    @classmethod
    def roll(cls, seed: int | None) -> Dice:
        rng = random.Random(seed)
        return cls(
            ids=random.Random(rng.random()),
            resize_corrupts=rng.randrange(10) < 3,  # 30%
            crash_on_run=[rng.randrange(2) == 0 for _ in range(2)],  # 50% each
        )


class ImageService:
    """Resource callbacks and task functions sharing the example's dice."""

    def __init__(self, dice: Dice) -> None:
        self.dice = dice
        self.problematic_runs = 0

    def create_processor(self) -> ImageProcessor:
        processor = ImageProcessor(self.dice.ids.randrange(1000))
        print(f"INFO: Creating ImageProcessor {processor.id}")
        return processor

    def destroy_processor(self, processor: ImageProcessor) -> None:
        print(f"INFO: Destroying ImageProcessor {processor.id}")

    def check_health(self, exc: BaseException) -> bool:
        if isinstance(exc, ProcessorCrash):
            print(f"WARN: Detected unhealthy error: {exc}. Worker will be replaced.")
            return False
        return True  # any other error fails the task but leaves the processor in service

    async def resize(self, processor: ImageProcessor, image: str) -> str:
        print(f"Worker {processor.id} processing normal resize for {image}")
        await asyncio.sleep(0.15)
        if self.dice.resize_corrupts:
            raise ImageCorrupted("image_corrupted")
        return image.replace(".jpg", "_resized.jpg")

    async def thumbnail(self, processor: ImageProcessor, video: str) -> str:
        print(f"Worker {processor.id} processing HIGH PRIORITY thumbnail for {video}")
        await asyncio.sleep(0.05)
        return video.replace(".mp4", "_thumbnail.jpg")

    async def problematic(self, processor: ImageProcessor, image: str) -> str:
        run = self.problematic_runs
        self.problematic_runs += 1
        print(f"Worker {processor.id} processing problematic image {image} (run {run + 1}, might crash)")
        await asyncio.sleep(0.1)
        if self.dice.crash_on_run[run]:
            raise ProcessorCrash("processor_crash")
        return image.replace(".jpg", "_processed.jpg")

    async def preview(self, processor: ImageProcessor, image: str) -> str:
        print(f"IMMEDIATE task processing fast preview with processor {processor.id}")
        await asyncio.sleep(0.02)
        return image.replace(".jpg", "_preview.jpg")


async def report(label: str, outcome: Awaitable[str]) -> None:
    """Await one task and print how it ended."""
    try:
        result = await outcome
    except MaxRetriesExceededError as exc:
        print(f"{label} failed: {exc} (last error: {exc.__cause__})")
    except Exception as exc:
        print(f"{label} failed: {exc}")
    else:
        print(f"{label} completed: {result}")


async def main(seed: int | None) -> None:
    print("--- Intermediate usage: image processing ---")
    service = ImageService(Dice.roll(seed))
    config = Config(
        on_create=service.create_processor,
        on_destroy=service.destroy_processor,
        worker_count=2,  # two base workers
        max_worker_count=2,  # no burst workers, as in the Go example
        check_health=service.check_health,
        max_retries=1,  # one re-run after an unhealthy error
        resource_pool_size=1,  # one processor kept aside for run_task
    )
    async with AsyncManager(config) as manager:
        print("Queueing a normal resize, a high-priority thumbnail and a task that might crash its worker...")
        print("Running an immediate preview task alongside (run_task)...")
        await asyncio.gather(
            report("Normal resize", manager.queue_task(service.resize, "imageA.jpg")),
            report("Priority thumbnail", manager.queue_task(service.thumbnail, "video.mp4", priority=True)),
            report("Problematic image task", manager.queue_task(service.problematic, "problematic_image.jpg")),
            report("Immediate preview", manager.run_task(service.preview, "imageB.jpg")),
        )

        stats = manager.stats()
        print("--- Current stats ---")
        print(f"Base workers: {stats.base_workers}")
        print(f"Active workers: {stats.active_workers}")
        print(f"Queued tasks: {stats.queued_tasks}")
        print(f"Priority tasks: {stats.priority_tasks}")
        print(f"Available resources: {stats.available_resources}")
        print("---------------------")
    print("Intermediate usage example finished.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="make the random outcomes reproducible")
    args = parser.parse_args()
    # The manager logs a worker replacement and a retry as warnings: show them in line with the output.
    logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    asyncio.run(main(args.seed))
