"""A frozen LM that reads a soft prompt per row: loss, rank-classification scores and greedy decoding.

Rows of a batch may each use a different prompt (`index` picks one of N prompts per row), which is
what lets the ensemble run B examples × N prompts, of mixed tasks, in one pass (paper §6, Figure 2).

Layout, both families: the prompt comes first. T5 prompts the encoder only (paper §2); causal LMs
read [prompt][input][target]. Position ids follow the attention mask, so padding on either side
gives a causal LM the same positions. Causal LMs can also take the prompt as precomputed
keys/values (`PrefixKV`): exact, since nothing before the prompt can change them (see
docs/engine.md, "Shared prefix").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.modeling_outputs import BaseModelOutput

from .backbone import Backbone
from .encoding import Batch


@dataclass
class PrefixKV:
    """Keys and values of N soft prompts, per layer [N, kv_heads, p, head_dim]: a causal LM's prompt, run once."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    length: int

    def rows(self, index: torch.Tensor | None, n_rows: int) -> DynamicCache:
        def pick(t):
            if index is None:
                return t.expand(n_rows, *t.shape[1:]) if t.shape[0] == 1 else t
            return t.index_select(0, index)
        return DynamicCache(ddp_cache_data=[(pick(k), pick(v)) for k, v in self.layers])

    @property
    def n_prompts(self) -> int:
        return self.layers[0][0].shape[0]


Prompts = torch.Tensor | PrefixKV  # [N, p, d] embeddings, or their keys/values


def _positions(mask: torch.Tensor, offset: int) -> torch.Tensor:
    return (offset + mask.cumsum(-1) - 1).clamp(min=0)


def _last_real(mask: torch.Tensor) -> torch.Tensor:
    return (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(-1)


class PromptedLM:
    """Plain-PyTorch prompt tuning around a `Backbone`; knows nothing of Ray."""

    def __init__(self, backbone: Backbone):
        self.backbone = backbone
        self.model = backbone.model
        self.head = self.model.get_output_embeddings()

    # ---- prompts -----------------------------------------------------------------------------
    def prefix_kv(self, prompts: torch.Tensor) -> PrefixKV:
        """Run N prompts [N, p, d] through a causal LM once; gradients flow back into `prompts`."""
        if self.backbone.is_encoder_decoder:
            raise ValueError("a T5 encoder is bidirectional: its prompt states depend on the input, so "
                             "they cannot be shared (use the plain path)")
        n, p, _ = prompts.shape
        mask = torch.ones(n, p, dtype=torch.long, device=prompts.device)
        out = self.model.base_model(inputs_embeds=prompts.to(self.backbone.dtype), attention_mask=mask,
                                    position_ids=_positions(mask, 0), cache=DynamicCache(), use_cache=True)
        layers = [(layer.keys, layer.values) for layer in out.cache.layers]
        return PrefixKV(layers, p)

    def _rows(self, prompts: torch.Tensor, index: torch.Tensor | None, n_rows: int) -> torch.Tensor:
        if index is not None:
            prompts = prompts.index_select(0, index)
        elif prompts.shape[0] == 1:
            prompts = prompts.expand(n_rows, -1, -1)
        return prompts.to(self.backbone.dtype)

    # ---- context: prompt + input ---------------------------------------------------------------
    def _causal(self, prompts: Prompts, index, ids, mask, use_cache: bool):
        """Hidden states of the input positions, with the cache and the mask over [prompt + input]."""
        n_rows = ids.shape[0]
        embeds = self.backbone.embed(ids)
        if isinstance(prompts, PrefixKV):
            p, cache = prompts.length, prompts.rows(index, n_rows)
        else:
            rows = self._rows(prompts, index, n_rows)
            p, cache = rows.shape[1], (DynamicCache() if use_cache else None)
            embeds = torch.cat([rows, embeds], 1)
        full_mask = torch.cat([mask.new_ones(n_rows, p), mask], 1)
        pos = _positions(full_mask, 0)[:, -embeds.shape[1]:]
        out = self.model.base_model(inputs_embeds=embeds, attention_mask=full_mask, position_ids=pos,
                                    cache=cache, use_cache=use_cache)
        hidden = out.last_hidden_state[:, -ids.shape[1]:]
        return hidden, out.cache, full_mask, p

    def _encode(self, prompts: torch.Tensor, index, ids, mask):
        """T5: the prompt is prepended to the encoder input only (paper §2)."""
        rows = self._rows(prompts, index, ids.shape[0])
        full_mask = torch.cat([mask.new_ones(ids.shape[0], rows.shape[1]), mask], 1)
        embeds = torch.cat([rows, self.backbone.embed(ids)], 1)
        enc = self.model.get_encoder()(inputs_embeds=embeds, attention_mask=full_mask).last_hidden_state
        return enc, full_mask

    def _decoder_logprobs(self, enc, enc_mask, targets):
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=enc_mask,
                         decoder_input_ids=self.model._shift_right(targets), use_cache=False)
        return F.log_softmax(out.logits.float(), -1).gather(-1, targets[..., None])[..., 0]

    def _token_logprobs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.head(hidden).float(), -1).gather(-1, targets[..., None])[..., 0]

    # ---- public API ----------------------------------------------------------------------------
    def target_logprobs(self, prompts: Prompts, batch: Batch, index: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token log p(target | prompt, input), [R, T] (zero at padding), in one pass."""
        ids, mask, tgt, tmask = batch.input_ids, batch.input_mask, batch.target_ids, batch.target_mask
        if self.backbone.is_encoder_decoder:
            enc, enc_mask = self._encode(prompts, index, ids, mask)
            return self._decoder_logprobs(enc, enc_mask, tgt) * tmask
        hidden, _, _, _ = self._causal(prompts, index, torch.cat([ids, tgt], 1), torch.cat([mask, tmask], 1), False)
        L, T = ids.shape[1], tgt.shape[1]
        # The token at input-or-target slot j is predicted by the last real slot before it.
        prev = torch.arange(L - 1, L + T - 1, device=ids.device).expand(ids.shape[0], T).clone()
        prev[:, 0] = _last_real(mask)
        picked = hidden.gather(1, prev[..., None].expand(-1, -1, hidden.shape[-1]))
        return self._token_logprobs(picked, tgt) * tmask

    def loss(self, prompts: Prompts, batch: Batch, index: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy on the target tokens only, averaged over them."""
        return -self.target_logprobs(prompts, batch, index).sum() / batch.target_mask.sum()

    def score(self, prompts: Prompts, batch: Batch, index: torch.Tensor | None = None) -> torch.Tensor:
        """Rank classification: log-likelihood of each of C candidates per row, [R, C] (-inf for padding).

        The prompt and input run once per row; each candidate continues from their cache.
        """
        ids, mask, cand, cmask = batch.input_ids, batch.input_mask, batch.target_ids, batch.target_mask
        scores = []
        if self.backbone.is_encoder_decoder:
            enc, enc_mask = self._encode(prompts, index, ids, mask)
            for c in range(cand.shape[1]):
                scores.append((self._decoder_logprobs(enc, enc_mask, cand[:, c]) * cmask[:, c]).sum(-1))
        else:
            hidden, cache, ctx_mask, p = self._causal(prompts, index, ids, mask, True)
            first = F.log_softmax(self.head(hidden[torch.arange(len(ids), device=ids.device), _last_real(mask)]).float(), -1)
            context, next_pos = [(layer.keys, layer.values) for layer in cache.layers], p + mask.sum(-1)
            for c in range(cand.shape[1]):
                tok, tmask = cand[:, c], cmask[:, c]
                total = first.gather(-1, tok[:, :1])[:, 0] * tmask[:, 0]
                if tok.shape[1] > 1:
                    steps = torch.arange(tok.shape[1] - 1, device=ids.device)
                    out = self.model.base_model(
                        inputs_embeds=self.backbone.embed(tok[:, :-1]), cache=DynamicCache(ddp_cache_data=context),
                        use_cache=True, attention_mask=torch.cat([ctx_mask, tmask[:, :-1]], 1),
                        position_ids=next_pos[:, None] + steps)
                    total = total + (self._token_logprobs(out.last_hidden_state, tok[:, 1:]) * tmask[:, 1:]).sum(-1)
                scores.append(total)
        scores = torch.stack(scores, 1)
        return scores.masked_fill(cmask.sum(-1) == 0, float("-inf"))

    @torch.no_grad()
    def generate(self, prompts: Prompts, batch: Batch, index: torch.Tensor | None = None,
                 max_new_tokens: int = 32) -> list[list[int]]:
        """Greedy decoding; returns the new token ids of each row, without the end-of-sequence token."""
        eos, pad_id = self.backbone.tokenizer.eos_token_id, self.backbone.tokenizer.pad_token_id
        ids, mask = batch.input_ids, batch.input_mask
        if self.backbone.is_encoder_decoder:
            enc, enc_mask = self._encode(prompts, index, ids, mask)
            out = self.model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=enc_mask,
                                      max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
            rows = out[:, 1:].tolist()
        else:
            hidden, cache, ctx_mask, p = self._causal(prompts, index, ids, mask, True)
            logits = self.head(hidden[torch.arange(len(ids), device=ids.device), _last_real(mask)])
            next_pos, new = p + mask.sum(-1), []
            done = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
            for step in range(max_new_tokens):
                tok = logits.argmax(-1).masked_fill(done, pad_id)
                new.append(tok)
                done = done | (tok == eos)
                if bool(done.all()) or step == max_new_tokens - 1:
                    break
                ctx_mask = torch.cat([ctx_mask, ctx_mask.new_ones(len(ids), 1)], 1)
                out = self.model.base_model(inputs_embeds=self.backbone.embed(tok[:, None]), cache=cache, use_cache=True,
                                            attention_mask=ctx_mask, position_ids=(next_pos + step)[:, None])
                logits = self.head(out.last_hidden_state[:, -1])
            rows = torch.stack(new, 1).tolist()
        return [r[: r.index(eos)] if eos in r else [t for t in r if t != pad_id] for r in rows]

    def decode(self, rows: list[list[int]]) -> list[str]:
        return [t.strip() for t in self.backbone.tokenizer.batch_decode(rows, skip_special_tokens=True)]
