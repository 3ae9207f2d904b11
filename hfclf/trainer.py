"""`Trainer` specialized for hfclf's tokenized datasets."""

from transformers import Trainer


class ClassifierTrainer(Trainer):
    """A `Trainer` whose length-grouped sampler reads the precomputed `length` column.

    `Trainer` drops the columns the model's `forward` does not take (`length` among them) before it builds the
    sampler, which then tokenizes its way through every example to measure it. Handing the sampler the full
    dataset keeps `group_by_length` instant on large training sets; the indices are the same.
    """

    def _get_train_sampler(self, train_dataset=None):
        return super()._get_train_sampler(self.train_dataset)
