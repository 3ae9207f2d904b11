"""`Trainer` specialized for hfclf's tokenized datasets."""

from torch.utils.data import SequentialSampler
from transformers import Trainer


class ClassifierTrainer(Trainer):
    """A `Trainer` that groups training batches by the precomputed `length` column and predicts in dataset order."""

    def _get_train_sampler(self, train_dataset=None):
        # `Trainer` drops the columns `forward` does not take (`length` among them) before building the sampler,
        # which then tokenizes its way through every example to measure it; the full dataset has the same indices.
        return super()._get_train_sampler(self.train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        # With `group_by_length`, `Trainer` also shuffles evaluation into length groups; predictions must come back
        # in dataset order so that predictions.csv lines up with the texts. (Several processes: accelerate shards
        # in order and `gather_for_metrics` restores it.)
        if self.args.world_size <= 1:
            return SequentialSampler(eval_dataset)
        return None
