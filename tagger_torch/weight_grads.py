"""One product for the gradient of a weight used several times in a compiled step.

Tagger applies each weight once per TAG iteration and the FC Ladder in each of its three encoders,
so the backward graph sums several products of the same shape for the weight's gradient. Inductor
emits that sum as a chain `mm`, `addmm`, `addmm`, ..., and ATen's `addmm(out=...)` first copies its
input into `out` (inductor never passes the same buffer). This post-grad pass rewrites each such
chain

    addmm(... addmm(mm(a_1, b_1), a_2, b_2) ..., a_n, b_n)          # sum_i a_i @ b_i, a_i (m, k_i)

into one product of the stacked operands, `mm(cat(a_i, dim=1), cat(b_i, dim=0))`. With a_i = x_iᵀ
(a permute of the saved (rows, in) activation) it stacks x_i along their rows instead, so the cat
copies the small activations and output gradients, not the (in, out) gradient. The sum is the same;
its order differs (float32 rounding). docs/speed.md, "Per CPU", has the measurements.
"""
from __future__ import annotations

import functools
from typing import List, Optional, Tuple

import torch
import torch.fx

aten = torch.ops.aten


def _plain_addmm(node: torch.fx.Node) -> bool:
    """node is addmm(inp, a, b) with beta = alpha = 1."""
    return (node.op == "call_function" and node.target is aten.addmm.default and len(node.args) == 3
            and node.kwargs.get("beta", 1) == 1 and node.kwargs.get("alpha", 1) == 1)


def _chain(last: torch.fx.Node) -> Optional[List[Tuple[torch.fx.Node, torch.fx.Node, torch.fx.Node]]]:
    """(node, a_i, b_i) of each product of the chain that ends in `last`, the first product (the
    `mm`) first, or None if it is no chain."""
    links, node = [], last
    while _plain_addmm(node):
        inp, a, b = node.args
        links.append((node, a, b))
        if not isinstance(inp, torch.fx.Node) or len(inp.users) != 1:
            return None
        node = inp
    if node is last or node.op != "call_function" or node.target is not aten.mm.default:
        return None
    links.append((node, *node.args))
    return links[::-1]


def _rows(a: torch.fx.Node) -> Optional[torch.fx.Node]:
    """x when a is the transpose of a 2-D x, else None."""
    if a.op == "call_function" and a.target is aten.permute.default and list(a.args[1]) == [1, 0]:
        return a.args[0]
    return None


def stack_weight_gradients(graph: torch.fx.Graph) -> int:
    """Rewrite every mm/addmm chain of `graph` (see the module docstring); returns how many."""
    ends = [node for node in graph.nodes if _plain_addmm(node)
            and not any(_plain_addmm(user) and user.args[0] is node for user in node.users)]
    rewritten = 0
    for last in ends:
        links = _chain(last)
        if links is None or any(x.meta.get("val") is None for _, a, b in links for x in (a, b)):
            continue
        if len({(a.meta["val"].dtype, b.meta["val"].dtype) for _, a, b in links}) != 1:
            continue
        with graph.inserting_before(last):
            xs = [_rows(a) for _, a, _ in links]
            if all(x is not None for x in xs):
                # (sum_i rows_i, m) stacked activations, their transpose the (m, sum_i k_i) left operand
                left = graph.call_function(aten.permute.default,
                                           (graph.call_function(aten.cat.default, (xs, 0)), [1, 0]))
            else:
                left = graph.call_function(aten.cat.default, ([a for _, a, _ in links], 1))
            # (sum_i k_i, n)
            right = graph.call_function(aten.cat.default, ([b for _, _, b in links], 0))
            product = graph.call_function(aten.mm.default, (left, right))
        last.replace_all_uses_with(product)
        # users first: the chain from its end, then the transposes nothing else reads
        for node in dict.fromkeys([node for node, _, _ in links[::-1]] + [a for _, a, _ in links]):
            if not node.users:
                graph.erase_node(node)
        rewritten += 1
    if rewritten:
        graph.lint()
    return rewritten


@functools.lru_cache(maxsize=None)
def _graph_pass():
    """`stack_weight_gradients` as an inductor `CustomGraphPass` (cached by this file's hash), or None
    for a torch without custom graph passes. Made when a compiled step is built: importing
    torch._inductor takes over a second, which commands that never compile should not pay."""
    try:
        from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files
    except ImportError:
        return None

    class StackWeightGradients(CustomGraphPass):
        def __call__(self, graph: torch.fx.Graph) -> None:
            stack_weight_gradients(graph)

        def uuid(self):
            return get_hash_for_files((__file__,))

    return StackWeightGradients()


def inductor_options() -> dict:
    """torch.compile(options=...) for a training step: the pass, where this torch has custom passes."""
    graph_pass = _graph_pass()
    return {} if graph_pass is None else {"post_grad_custom_post_pass": graph_pass}
