#!/usr/bin/env python
"""Fine-tune a text classifier: `accelerate launch recipes/finetune.py --pooling attention --dataset sst2`.

Every flag of hfclf's model and data arguments and of `transformers.TrainingArguments` works here, and a YAML or
JSON file of flags can come first: `python recipes/finetune.py my_run.yaml --learning_rate 3e-5`.
Run with --help for the full list.
"""

import sys

from hfclf.commands.finetune import main

if __name__ == "__main__":
    sys.exit(main())
