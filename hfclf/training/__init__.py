"""Training support over the run folder: the `Trainer` subclass (`trainer`) and LoRA adapters (`lora`)."""
