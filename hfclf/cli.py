"""The `hfclf` command: `hfclf train ...` runs the finetune recipe."""

import sys

USAGE = """usage: hfclf <command> [flags]

commands:
  train     fine-tune a classifier (same flags as recipes/finetune.py; `hfclf train --help` lists them)

example:
  hfclf train --dataset sst2 --pooling attention --max_train_samples 2000
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        from .finetune import main as train_main

        return train_main(rest)
    print(f"error: unknown command '{command}'; run `hfclf --help` for the list.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
