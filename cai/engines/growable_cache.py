"""A KV cache that appends in place: transformers' DynamicLayer concatenates (copies) every cached key and value at
each decoding step, which on a CPU with a few-shot prefix of ~2k tokens expanded across a batch cost more time than
the matmuls (profiled: 37% in aten::cat). Here keys and values are views of a buffer grown by blocks."""
from __future__ import annotations

from typing import Any

from transformers.cache_utils import DynamicCache, DynamicLayer

BLOCK = 256  # tokens of headroom added per reallocation: one copy every BLOCK decoding steps instead of every step


class GrowableLayer(DynamicLayer):
    """DynamicLayer whose keys/values are views into preallocated buffers, written in place."""

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple:
        """Append the new states (in place when the buffer has room) and return all keys and values so far."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length, new = self.own_length(), key_states.shape[-2]
        if not self._owns_views(key_states) or length + new > self._key_buffer.shape[-2]:
            self._grow(length + new, key_states, value_states)
        self._key_buffer[..., length:length + new, :].copy_(key_states)
        self._value_buffer[..., length:length + new, :].copy_(value_states)
        self.keys = self._key_buffer[..., :length + new, :]
        self.values = self._value_buffer[..., :length + new, :]
        return self.keys, self.values

    def own_length(self) -> int:
        """Tokens this layer holds keys and values for (a subclass may count positions before them too)."""
        return DynamicLayer.get_seq_length(self)

    def _owns_views(self, key_states: Any) -> bool:
        # batch_repeat_interleave, batch_select_indices, crop or a deepcopy replace `keys` by another tensor
        buffer = getattr(self, "_key_buffer", None)
        return (buffer is not None and self.keys.numel() > 0 and buffer.shape[0] == key_states.shape[0]
                and self.keys.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr())

    def _grow(self, needed: int, key_states: Any, value_states: Any) -> None:
        length = self.own_length()
        capacity = needed + BLOCK
        shape = (*key_states.shape[:-2], capacity)
        self._key_buffer = key_states.new_empty(*shape, key_states.shape[-1])
        self._value_buffer = value_states.new_empty(*shape, value_states.shape[-1])
        if length:
            self._key_buffer[..., :length, :].copy_(self.keys)
            self._value_buffer[..., :length, :].copy_(self.values)
        self.keys = self._key_buffer[..., :length, :]
        self.values = self._value_buffer[..., :length, :]


def growable_cache(config: Any) -> DynamicCache:
    """A DynamicCache for `config` whose full-attention layers append in place (sliding-window layers unchanged)."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowableLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
