"""Check cells of notebook 06 (transformer prior): the causal mask, attention, multi-head self-attention, and the
key/value cache step."""

from __future__ import annotations

import math

import torch

from starter.checks import CheckFailed, CheckRun, check, expect, expect_close, expect_shape
from starter.checks.architecture import behaves_like, expect_same_as
from starter.checks.kernel import Handle
from starter.models.transformer import SelfAttention
from starter.probes import general
from starter.probes.transformer import AttentionLayer, cache_length, kv_cache
from starter.report import Report


def _mask_answer(queries: int, keys: int) -> torch.Tensor:
    return torch.ones(queries, keys, dtype=torch.bool).tril(keys - queries)


def _mask_matches(causal_mask: Handle, queries: int, keys: int) -> None:
    found = causal_mask(queries, keys)
    what = f"causal_mask({queries}, {keys})"
    expect_shape(
        found,
        (queries, keys),
        what,
        "one row per query, one column per key" if tuple(getattr(found, "shape", ())) == (keys, queries) else "",
    )
    expect(
        found.dtype == torch.bool,
        f"{what} should be a bool tensor (True where a query may attend), found {found.dtype}",
    )
    wanted = _mask_answer(queries, keys)
    if torch.equal(found, wanted):
        return
    ones = torch.ones(queries, keys, dtype=torch.bool)
    causes = {
        "each position must also see itself: keep the diagonal": ones.tril(keys - queries - 1),
        "this lets positions see later ones and not earlier ones: True where key j <= the query's position": ones.triu(
            keys - queries
        ),
        "the queries are the LAST `queries` of the `keys` positions: shift the triangle by keys - queries": ones.tril(),
        "nothing is hidden: the later keys must be False": ones,
    }
    cause = next((text for text, value in causes.items() if torch.equal(found, value)), "")
    row = int((found != wanted).any(1).nonzero()[0])
    raise CheckFailed(
        f"{what}: row {row} (query {keys - queries + row}) is {found[row].int().tolist()}, expected "
        f"{wanted[row].int().tolist()}" + (f": {cause}" if cause else "")
    )


@check
def check_causal_mask(causal_mask: Handle, hidden: bool = False) -> Report:
    """causal_mask(queries, keys) -> (queries, keys) bool, True where query i (position keys - queries + i) may
    attend to key j: j <= its position."""
    sizes = [(7, 7), (1, 7), (3, 9)] if hidden else [(5, 5), (1, 5), (2, 6)]
    with CheckRun("causal_mask", causal_mask.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"causal_mask({sizes[0][0]}, {sizes[0][1]}): each position sees itself and the ones before",
            lambda: _mask_matches(causal_mask, *sizes[0]),
        )
        run.step(
            f"with a cache: causal_mask({sizes[1][0]}, {sizes[1][1]}) and causal_mask({sizes[2][0]}, {sizes[2][1]})",
            lambda: (_mask_matches(causal_mask, *sizes[1]), _mask_matches(causal_mask, *sizes[2])),
        )
    return run.report


def _attention_answer(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


def _attention_causes(q, k, v, mask) -> dict[str, torch.Tensor]:
    scores, d = q @ k.transpose(-2, -1), q.shape[-1]
    return {
        "the scores are not scaled: divide q k^T by sqrt(d), d the width of a head": scores.masked_fill(
            ~mask, float("-inf")
        ).softmax(-1)
        @ v,
        "the scores are divided by d: divide by sqrt(d)": (scores / d).masked_fill(~mask, float("-inf")).softmax(-1)
        @ v,
        "the mask is inverted: hide the scores where the mask is False (masked_fill(~mask, -inf))": _attention_answer(
            q, k, v, ~mask
        ),
        "the mask is ignored: set the hidden scores to -inf before the softmax": _attention_answer(
            q, k, v, torch.ones_like(mask)
        ),
        "hidden scores set to 0 instead of -inf: a 0 still gets weight exp(0)": (scores / math.sqrt(d))
        .masked_fill(~mask, 0.0)
        .softmax(-1)
        @ v,
        "the softmax runs over the queries: it must run over the keys (the last dimension)": (scores / math.sqrt(d))
        .masked_fill(~mask, float("-inf"))
        .softmax(-2)
        @ v,
    }


def _attention_matches(attention: Handle, queries: int, keys: int, causal: bool) -> None:
    q, k, v = torch.randn(2, 3, queries, 8), torch.randn(2, 3, keys, 8), torch.randn(2, 3, keys, 8)  # all (..., d)
    mask = _mask_answer(queries, keys) if causal else torch.rand(queries, keys) < 0.7
    mask[:, 0] = True  # every query sees something
    found = attention(q, k, v, mask)
    expect_close(
        found,
        _attention_answer(q, k, v, mask),
        f"attention(q ({tuple(q.shape)}), k, v, mask)",
        atol=1e-4,
        causes=_attention_causes(q, k, v, mask),
    )


@check
def check_attention(attention: Handle, hidden: bool = False) -> Report:
    """attention(q, k, v, mask) -> softmax(q k^T / sqrt(d), -inf where the mask is False) v."""
    queries, keys = (4, 9) if hidden else (6, 6)
    with CheckRun("attention", attention.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"{queries} queries, {keys} keys, a causal mask: equals softmax(q k^T / sqrt(d)) v",
            lambda: _attention_matches(attention, queries, keys, True),
        )
        run.step("any mask: hidden scores get no weight", lambda: _attention_matches(attention, queries, keys, False))
    return run.report


def _self_attention_variants(x: torch.Tensor, heads: int) -> dict:
    def output(ref, causal=True, merge=True, split=True, project=True):
        n, t, width = x.shape
        parts = ref.qkv(x).split(width, dim=2)
        q, k, v = (
            (part.view(n, t, heads, -1).transpose(1, 2) for part in parts) if split else (p[:, None] for p in parts)
        )
        y = _attention_answer(q, k, v, _mask_answer(t, t) if causal else torch.ones(t, t, dtype=torch.bool))
        y = y.transpose(1, 2).reshape(n, t, width) if merge else y.reshape(n, t, width)
        return ref.out(y) if project else y

    return {
        "no causal mask: each position attends to later ones; pass causal_mask(T, T) to attention": lambda ref: output(
            ref, causal=False
        ),
        "one head of full width: split q, k and v into heads, .view(N, T, heads, width // heads).transpose(1, "
        "2)": lambda ref: output(ref, split=False),
        "the heads are merged without moving them back: y.transpose(1, 2).reshape(N, T, width)": lambda ref: output(
            ref, merge=False
        ),
        "the heads are not mixed by self.out: apply it last": lambda ref: output(ref, project=False),
    }


def _self_attention(CausalSelfAttention: Handle, width: int, heads: int) -> None:
    layer, x = CausalSelfAttention(width, heads), torch.randn(2, 7, width)
    facts = CausalSelfAttention.kernel.run(general.describe, layer)
    expect(facts["module"], f"CausalSelfAttention should build an nn.Module, found {facts['type']}")
    expect_shape(layer(x), (2, 7, width), f"CausalSelfAttention({width}, {heads})(x)")
    what = f"CausalSelfAttention({width}, {heads})"
    expect_same_as(
        behaves_like(layer, SelfAttention(width, heads), (x,), what),
        what,
        _self_attention_variants(x, heads),
        diagnose=lambda: _sees_no_later_position(layer, width),
    )


def _sees_no_later_position(layer: Handle, width: int) -> None:
    x = torch.randn(1, 6, width)
    later = x.clone()
    later[:, 3:] = torch.randn(1, 3, width)
    changed = ((layer(x) - layer(later)).abs().amax((0, 2)) > 1e-5)[:3]
    if changed.any():
        raise CheckFailed(
            f"the output at position {int(changed.nonzero()[0])} changes when positions 3 to 5 change: "
            "attend with the causal mask"
        )


@check
def check_self_attention(CausalSelfAttention: Handle, width: int = 16, heads: int = 4, hidden: bool = False) -> Report:
    """CausalSelfAttention(width, heads)(x): multi-head attention of (N, T, width) inputs with the causal mask."""
    with CheckRun("CausalSelfAttention", CausalSelfAttention.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"multi-head attention (width {width}, {heads} heads): qkv, split into heads, causal attention, "
            "merge, out; no output sees a later position",
            lambda: _self_attention(CausalSelfAttention, width, heads),
        )
    return run.report


def _step_through(attention_step: Handle, width: int, heads: int, sizes: list[int]) -> None:
    """Plain calls of attention_step(layer, chunk, cache), one per chunk, with one cache: the outputs are compared
    with the reference's here."""
    kernel, length = attention_step.kernel, sum(sizes)
    reference = SelfAttention(width, heads)
    layer = kernel.run(AttentionLayer, width, heads)
    kernel.run(general.load_parameters, layer, [p.detach() for p in reference.parameters()])
    x = torch.randn(2, length, width)
    cache = kernel.run(kv_cache, length)
    outputs = [attention_step(layer, chunk, cache) for chunk in x.split(sizes, dim=1)]
    with torch.no_grad():
        wanted = reference(x)
        alone = torch.cat([reference(chunk) for chunk in x.split(sizes, dim=1)], 1)
    expect(all(torch.is_tensor(o) for o in outputs), "attention_step should return a tensor")
    for output, size in zip(outputs, sizes):
        expect_shape(output, (2, size, width), f"attention_step on {size} new position(s)")
    cached = kernel.run(cache_length, cache)
    expect(
        cached == length,
        f"after {length} positions the cache holds {cached}: add each step's keys and values with cache.extend(k, v)",
    )
    expect_close(
        torch.cat(outputs, 1),
        wanted,
        f"the outputs of {length} positions fed {', '.join(map(str, sizes))} at a time",
        atol=1e-4,
        causes={
            "the new positions attend only to themselves: attend to every key in the "
            "cache (the keys extend returns)": alone
        },
    )


@check
def check_attention_step(attention_step: Handle, width: int = 16, heads: int = 4, hidden: bool = False) -> Report:
    """attention_step(layer, x, cache): the new positions' attention over every cached position; the same outputs
    as attention over the whole sequence at once."""
    sizes = [1, 2, 1, 3, 1] if hidden else [3, 1, 1, 2, 1]
    with CheckRun("attention_step", attention_step.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"positions fed {', '.join(map(str, sizes))} at a time: the cache grows and the outputs equal causal "
            "self-attention over the whole sequence at once",
            lambda: _step_through(attention_step, width, heads, sizes),
            hints={RuntimeError: "the mask must be causal_mask(new positions, all keys in the cache)"},
        )
    return run.report
