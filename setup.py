"""Packaging for it_jax: the library (`it_jax`) and its task collections (`mixtures`)."""

import setuptools

# A set of versions verified to work together on Python 3.11 (CPU). Accelerator users swap `jax[cpu]` for
# `jax[cuda12]` or `jax[tpu]` at the same version.
INSTALL_REQUIRES = [
    "jax[cpu]==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "seqio==0.0.20",
    "tensorflow==2.21.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets==4.9.10",
    "sentencepiece==0.2.3",
    "gin-config==0.5.0",
    "numpy==2.4.6",
    "tqdm==4.70.1",
    "sacrebleu==2.6.0",
    "rouge-score==0.1.2",
    "scipy==1.17.1",
    "matplotlib==3.11.2",
    "safetensors==0.8.0",
]

# Hugging Face parity tests and the throughput benchmark compare against transformers on PyTorch (CPU).
TEST_REQUIRES = [
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",
    "torch==2.13.0",
    "transformers==5.23.0",
]

setuptools.setup(
    name="it_jax",
    version="0.1.0",
    description="JAX-native instruction tuning: FLAN-style templated tasks, T5 and decoder models, sharded training.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["it_jax", "it_jax.*", "mixtures", "mixtures.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
)
