"""The commands: `hfclf` itself (`cli`), a training run (`finetune`), a grid of runs (`compare`) and a
hyperparameter search (`search`). Nothing in hfclf imports them."""
