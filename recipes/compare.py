#!/usr/bin/env python
"""Compare fine-tuning variants: `python recipes/compare.py recipes/configs/sst2_pooling.yaml --max_train_samples 500`.

Runs every variant of the config one after another and writes a report folder (results.md/.csv, accuracy.png,
loss_curves.png, confusion matrices, README.md). Rerunning skips finished variants. `--help` for details.
"""

import sys

from hfclf.commands.compare import main

if __name__ == "__main__":
    sys.exit(main())
