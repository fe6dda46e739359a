"""`engine: openai`: any OpenAI-compatible server (vLLM's, TGI, llama.cpp, a hosted API) for generation and, where the
server returns log-probs, for the feedback model's option scores.

- Generation: chat completions, one request per chat with its own `seed`, at most `max_concurrency` in flight;
  timeouts and retries with backoff on 429/5xx are the openai client's own (`timeout`, `max_retries`).
- Option scoring, in the best way the server offers (probed once, at plan time):
  `echo`: /completions with the prompt and option as token ids, `echo` and `logprobs`: exact continuation
  log-probs (vLLM's server does this); `top_logprobs`: the next token's top log-probs, for one-token options.
  Prompts are rendered and tokenized locally, with the spec's tokenizer, as the hf engine renders them.
- The API key is read from the environment variable the spec names (`api_key_env`) when the engine opens; the key
  itself is never part of a spec, key, log or artifact.
"""
from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import OmegaConf

from cai.constitution.render import with_system
from cai.engines.base import CONTINUATION, GENERATE, NEXT_TOKEN, Capabilities, Chat, EngineBase, EngineStats
from cai.errors import CaiError, first_line
from cai.registry import engine

OPTIONS = {"model": None, "max_concurrency": 16, "chunks_in_flight": 4, "timeout": 600.0, "max_retries": 5,
           "top_logprobs": 20}
"""engine_options and their defaults: the served model name (default: the spec's id), requests in flight, chunks a
stage keeps in flight, seconds per request, retries on 429/5xx/connection errors, top log-probs asked for."""
NOT_IN_KEY = ("max_concurrency", "chunks_in_flight", "timeout", "max_retries")


def options_of(spec) -> Dict[str, Any]:
    """The spec's engine_options over the defaults."""
    given = OmegaConf.to_container(spec.engine_options, resolve=True) if spec.get("engine_options") else {}
    return {**OPTIONS, **given}


def served_name(spec) -> str:
    """The model name the server knows: engine_options.model, else the spec's id."""
    name = options_of(spec)["model"] or spec.get("id")
    if not name:
        raise CaiError("engine_options.model: name the served model (the server's --served-model-name), or set id")
    return name


def api_key(spec) -> str:
    """The key from the environment variable the spec names; servers without auth accept any key."""
    if not spec.get("api_key_env"):
        return "EMPTY"
    value = os.environ.get(spec.api_key_env)
    if not value:
        raise CaiError(f"api_key_env: the environment variable {spec.api_key_env} is not set (it holds the API key "
                       f"for {spec.base_url})")
    return value


def client(spec, timeout: Optional[float] = None, retries: Optional[int] = None):
    """An openai client for the spec's server."""
    from openai import OpenAI

    options = options_of(spec)
    return OpenAI(base_url=spec.base_url, api_key=api_key(spec), timeout=timeout or options["timeout"],
                  max_retries=options["max_retries"] if retries is None else retries)


class OpenAIEngine(EngineBase):
    """Chats and option scores over an OpenAI-compatible HTTP API."""

    name = "openai"

    def __init__(self, spec, home):
        from cai.models import load_tokenizer

        self.spec, self.home = spec, home
        self.options = options_of(spec)
        self.model = served_name(spec)
        self.client = client(spec)
        self.scoring = probe(spec.base_url, self.model, api_key(spec))
        self.capabilities = capabilities_from(self.scoring, self.options)
        self.stats = EngineStats()
        self._tokenizer = functools.lru_cache(maxsize=1)(lambda: load_tokenizer(spec, home))
        self.pool = ThreadPoolExecutor(max_workers=int(self.options["max_concurrency"]))

    def describe(self) -> Dict[str, Any]:
        """The server and model that produced the bytes (never the key)."""
        import openai

        return {"engine": self.name, "version": f"openai {openai.__version__}", "base_url": self.spec.base_url,
                "model": self.model, "scoring": self.scoring}

    def close(self) -> None:
        """Stop the request pool and the HTTP client."""
        self.pool.shutdown(wait=True)
        self.client.close()

    def has_chat_template(self) -> bool:
        """The server renders chats with the model's template."""
        return True

    def generate(self, chats: List[Chat], sampling, seeds: Sequence[int]) -> List[str]:
        """One chat completion per chat, each with its row's seed, up to max_concurrency at once."""
        if len(seeds) != len(chats):
            raise ValueError(f"generate: {len(chats)} chats but {len(seeds)} seeds")
        began = time.perf_counter()
        replies = list(self.pool.map(lambda pair: self._chat(pair[0], sampling, pair[1]), zip(chats, seeds)))
        self.stats.prompts += len(chats)
        self.stats.seconds += time.perf_counter() - began
        return replies

    def _chat(self, chat: Chat, sampling, seed: int) -> str:
        extra = {}
        if sampling.top_k:
            extra["top_k"] = int(sampling.top_k)
        if sampling.repetition_penalty != 1.0:
            extra["repetition_penalty"] = float(sampling.repetition_penalty)
        response = self._call(self.client.chat.completions.create, model=self.model,
                              messages=with_system(chat, self.spec.system_prompt),
                              max_tokens=int(sampling.max_new_tokens), seed=int(seed) % (2**31),
                              temperature=float(sampling.temperature) if sampling.do_sample else 0.0,
                              top_p=float(sampling.top_p) if sampling.do_sample else 1.0, extra_body=extra or None)
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.stats.generated_tokens += usage.completion_tokens or 0
            self.stats.prompt_tokens += usage.prompt_tokens or 0
        return response.choices[0].message.content or ""

    def choice_logprobs(self, prompts: List, options: List[List[str]]) -> List[List[float]]:
        """Each option's log-prob after its prompt (see the module docstring for how, per server)."""
        from cai.engines.openai_scoring import score

        began = time.perf_counter()
        scores = score(self, prompts, options)
        self.stats.prompts += len(prompts)
        self.stats.seconds += time.perf_counter() - began
        return scores

    def _call(self, method, **kwargs) -> Any:
        """One request; a server that stays unreachable or fails is a CaiError naming it."""
        import openai

        try:
            return method(**kwargs)
        except openai.APIConnectionError as error:  # includes timeouts, after the client's own retries
            raise CaiError(f"server {self.spec.base_url} did not answer ({type(error).__name__}: "
                           f"{first_line(error)}); finished chunks are kept: rerun the command to resume") from None
        except openai.APIStatusError as error:
            raise CaiError(f"server {self.spec.base_url} refused a request for model {self.model!r}: HTTP "
                           f"{error.status_code}: {first_line(error)}") from None


@functools.lru_cache(maxsize=None)
def probe(base_url: str, model: str, key: str) -> str:
    """How the server scores options: "echo" (prompt log-probs), "top_logprobs" (next token only) or "none";
    it must serve `model`."""
    import openai

    api = openai.OpenAI(base_url=base_url, api_key=key, timeout=30.0, max_retries=1)
    try:
        served = [m.id for m in api.models.list().data]
    except openai.OpenAIError as error:
        raise CaiError(f"server {base_url} did not answer ({type(error).__name__}: {first_line(error)}); start it, "
                       f"or point base_url at a running OpenAI-compatible server") from None
    if model not in served:
        raise CaiError(f"server {base_url} does not serve model {model!r}; it serves: {', '.join(served)}")
    for mode, request in (("echo", dict(prompt="Hello", max_tokens=1, echo=True, logprobs=1)),
                          ("top_logprobs", dict(prompt="Hello", max_tokens=1, logprobs=2))):
        try:
            out = api.completions.create(model=model, temperature=0.0, **request)
        except openai.OpenAIError:
            continue
        logprobs = out.choices[0].logprobs
        if mode == "echo" and logprobs and len(logprobs.token_logprobs or []) >= 2:
            return mode
        if mode == "top_logprobs" and logprobs and logprobs.top_logprobs:
            return mode
    return "none"


def capabilities_from(scoring: str, options: Dict[str, Any]) -> Capabilities:
    """What a server that scores this way can do."""
    can = {GENERATE} | ({NEXT_TOKEN, CONTINUATION} if scoring == "echo" else {NEXT_TOKEN} if scoring == "top_logprobs"
                        else set())
    return Capabilities(can=frozenset(can), concurrency=int(options["chunks_in_flight"]), local_weights=False)


def capabilities(spec) -> Capabilities:
    """Plan-time: ask the server (once per URL and model) what it can do."""
    return capabilities_from(probe(spec.base_url, served_name(spec), api_key(spec)), options_of(spec))


def check(spec, where: str) -> None:
    """Plan-time: a base_url, known options, the key's variable set; the server is probed by `capabilities`."""
    if not spec.get("base_url"):
        raise CaiError(f"{where}.base_url: engine openai needs the server's URL, e.g. http://127.0.0.1:8000/v1")
    unknown = sorted(set(options_of(spec)) - set(OPTIONS))
    if unknown:
        raise CaiError(f"{where}.engine_options.{unknown[0]}: not an option of engine openai; available: "
                       f"{', '.join(OPTIONS)}")
    try:
        served_name(spec), api_key(spec)
    except CaiError as error:
        raise CaiError(f"{where}.{error}") from None


@engine("openai", capabilities=capabilities, check=check, options_not_in_key=NOT_IN_KEY)
def openai_engine(spec, home) -> OpenAIEngine:
    """Factory for `engine: openai`."""
    return OpenAIEngine(spec, home)
