"""Reading and writing model files: archives, Hugging Face directories, ONNX."""
