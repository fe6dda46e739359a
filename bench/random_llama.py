"""Build a random llama of a chosen size (offline) and time the hf engine on it: batched + shared prefix vs one-at-a-time.

Used to check the GPU paths (bf16, prefix cache, LoRA at size) where no hub model can be downloaded:
    python bench/random_llama.py OUT_DIR [--hidden 1024 --layers 16] [--prompts 32 --max-new 64]
Then point any recipe at it: models.base.source=local models.base.path=OUT_DIR.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from omegaconf import OmegaConf


def build(out: Path, hidden: int, layers: int) -> None:
    """Save a random llama with the byte-level ChatML tokenizer (same as tiny_random, larger)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cai.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 4,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 128,
                         max_position_embeddings=16384, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"built {sum(p.numel() for p in LlamaForCausalLM(config).parameters()) / 1e6:.0f}M-parameter llama in {out}")


def time_engine(out: Path, prompts: int, max_new: int) -> None:
    """Tokens/s of the engine (batched, prefix cache) and of a one-at-a-time generate loop, same prompts."""
    import torch

    from cai.engines.hf import HFEngine
    from cai.schema import ModelSpec, Sampling

    spec = OmegaConf.merge(OmegaConf.structured(ModelSpec), {"source": "local", "path": str(out), "dtype": "auto"})
    engine = HFEngine(spec, out)
    sampling = OmegaConf.structured(Sampling(max_new_tokens=max_new, do_sample=False))
    prefix = [{"role": "user", "content": "Shared few-shot exemplar text. " * 40}, {"role": "assistant", "content": "ok"}]
    chats = [prefix + [{"role": "user", "content": f"question {i}"}] for i in range(prompts)]
    engine.generate(chats[:2], sampling, [0, 1])  # warm-up
    start, before = time.perf_counter(), engine.stats.generated_tokens
    engine.generate(chats, sampling, list(range(len(chats))))
    batched = (engine.stats.generated_tokens - before) / (time.perf_counter() - start)
    start, tokens = time.perf_counter(), 0
    for chat in chats[:8]:
        ids = engine.tokenizer(engine.render(chat), return_tensors="pt").to(engine.model.device)
        with torch.inference_mode():
            tokens += engine.model.generate(**ids, max_new_tokens=max_new, min_new_tokens=max_new,
                                            do_sample=False).shape[1] - ids.input_ids.shape[1]
    single = tokens / (time.perf_counter() - start)
    print(f"device={engine.model.device} dtype={engine.model.dtype} batched={batched:.0f} tok/s "
          f"one-at-a-time={single:.0f} tok/s ratio={batched / single:.1f}x")


def main() -> None:
    """Build, then time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new", type=int, default=64)
    args = parser.parse_args()
    build(args.out, args.hidden, args.layers)
    time_engine(args.out, args.prompts, args.max_new)


if __name__ == "__main__":
    main()
