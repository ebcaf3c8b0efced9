"""Each training process's share of an evaluation set under DDP: whole batches, in order.

PyTorch's ``DistributedSampler`` and Lightning's ``UnrepeatedDistributedSampler`` deal the
samples out in turn (process ``r`` gets ``r, r + n, r + 2n, ...``), so a process's batches
are not the batches one process would see. The loss is the paper's batch dice, which depends
on a batch's make-up (a batch without landslide pixels adds nothing), and every pool
alternates positive and negative patches: dealt out in turn over two processes, one would
validate on positive patches only. No maintained sampler keeps the batches, hence this one:
process ``r`` gets a run of consecutive whole batches, every sample exactly once, so the
synchronised validation and test losses and metrics are the single-process ones.
"""

from collections.abc import Iterator
from math import ceil
from typing import Any

from torch.utils.data import Dataset, DistributedSampler


class BatchShardSampler(DistributedSampler):
    """The indices of process ``rank``'s consecutive whole batches of a dataset.

    A ``DistributedSampler``, so Lightning does not wrap it in its own.

    Args:
        dataset: the evaluation set (sized).
        batch_size: the loader's batch size.
        num_replicas: number of processes.
        rank: this process's rank.

    Raises:
        ValueError: there are fewer batches than processes, so a process would have none
            (its missing metric synchronisation would stall the others).
    """

    def __init__(
        self, dataset: Dataset[Any], batch_size: int, num_replicas: int, rank: int
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        size = len(dataset)  # type: ignore[arg-type]  # evaluation sets are sized
        batches = ceil(size / batch_size)
        if batches < num_replicas:
            raise ValueError(
                f"{size} samples make {batches} batch(es) of {batch_size}, fewer than the "
                f"{num_replicas} training processes, so a process would evaluate nothing; use "
                "fewer processes (trainer.devices) or a smaller data.batch_size"
            )
        first = batches * rank // num_replicas
        last = batches * (rank + 1) // num_replicas
        self.indices = range(first * batch_size, min(last * batch_size, size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
