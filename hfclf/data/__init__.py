"""The data: named datasets and files read into text and labels (`loading`), labels encoded by task shape
(`labels`, `tasks`), what a model's outputs mean for each shape (`scoring`) and batched tokenization
(`tokenization`). These modules import nothing of hfclf's above `errors`."""
