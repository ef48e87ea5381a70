"""The training step's parts: the noise drawn outside the forward (the same draws, no graph break),
the compiled step's stacked weight gradients, BlocksAdam's kept lists."""
import pytest
import torch
import torch._inductor.config

from tagger_torch import weight_grads

from tagger_torch.config import from_dict
from tagger_torch.model import Tagger
from tagger_torch.models import Batch, build_model
from tagger_torch.optim import BlocksAdam, adam_update_
from tagger_torch.training.step import make_train_step
from test_baselines import TINY_MODELS
from tiny import LABELLED, TINY


def tiny_batch(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, D = config.batch_size, config.input_size
    x = torch.rand(B, D, generator=g)
    if config.binary_inputs:
        x = (x < 0.3).float()
    if not config.uses_labels:
        return Batch(x)
    return Batch(x, torch.rand(B, D, generator=g), torch.randint(0, 10, (B, config.objects_per_sample), generator=g))


@pytest.mark.parametrize("fields", [TINY, LABELLED], ids=["binary", "continuous-classifying"])
def test_batch_cost_draws_what_the_forward_would(fields):
    """The release's order: the unlabelled pass's corruption then m_init, then the labelled pass's;
    drawn in batch_cost, they are bitwise the draws forward makes from the generator itself."""
    config = from_dict(fields)
    model, batch = Tagger(config), tiny_batch(config)
    drawn_outside = torch.Generator().manual_seed(5)
    cost, stats = model.batch_cost(batch, drawn_outside)
    drawn_inside = torch.Generator().manual_seed(5)
    expected = model(batch.x, corrupt=True, generator=drawn_inside).cost
    if config.uses_labels:
        labelled = model(batch.x_labelled, corrupt=True, generator=drawn_inside, labels=batch.labels)
        expected = expected + config.class_cost_x * labelled.class_cost[-1]
        assert torch.equal(stats["class_cost"], labelled.class_cost[-1])
    assert torch.equal(cost, expected)
    assert torch.equal(drawn_outside.get_state(), drawn_inside.get_state())  # as many draws


@pytest.mark.parametrize("fields, passes", [(LABELLED, 2), (TINY_MODELS["fc-ladder"], 1)],
                         ids=["tagger", "fc-ladder"])
def test_the_training_forward_is_one_graph(fields, passes):
    """No draw inside the forward that batch_cost calls: torch.compile traces it without a graph break
    (Tagger: one call per pass; the FC Ladder: one call for its clean, corrupted and labelled passes)."""
    config = from_dict(fields)
    model, batch = build_model(config), tiny_batch(config)
    calls = []

    def explained(*args, **kwargs):
        report = torch._dynamo.explain(model)(*args, **kwargs)
        calls.append((report.graph_count, report.graph_break_count))
        return model(*args, **kwargs)

    torch._dynamo.reset()
    model.batch_cost(batch, torch.Generator().manual_seed(0), forward=explained)
    assert calls == [(1, 0)] * passes


@pytest.mark.parametrize("fields, chains", [(LABELLED, 13), (TINY_MODELS["fc-ladder"], 1)], ids=["tagger", "fc-ladder"])
def test_a_compiled_step_sums_each_weights_uses_in_one_product(monkeypatch, fields, chains):
    """weight_grads rewrites the backward's mm/addmm chains (Tagger: a term per TAG iteration; the FC
    Ladder: its clean, corrupted and labelled encoders) into one product of stacked operands, and the
    gradients are eager's up to float32 rounding. Tagger (T = 2): at least each of its 7 weights in the
    unlabelled pass's backward and, in the labelled pass's, those below y (after y the last iteration
    carries no gradient there, so those weights' gradient is one product)."""
    config = from_dict(fields)
    batch = tiny_batch(config)
    grads, rewrites = {}, []
    counting = weight_grads.stack_weight_gradients
    monkeypatch.setattr(weight_grads, "stack_weight_gradients", lambda graph: rewrites.append(counting(graph)))
    for compile in (False, True):
        model = build_model(config, seed=config.seed)
        step = make_train_step(model, BlocksAdam(model.parameters(), lr=config.lr), compile=compile)
        torch._dynamo.reset()
        with torch._inductor.config.patch(fx_graph_cache=False):  # the pass runs, not a cached graph
            step(batch, torch.Generator().manual_seed(0))
        grads[compile] = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    assert sum(rewrites) >= chains, rewrites
    for name, eager in grads[False].items():
        scale = float(eager.abs().max()) + 1e-12
        error = float((grads[True][name] - eager).abs().max())
        assert error <= 1e-5 * scale + 1e-7, f"{name}: compiled gradient off by {error:.3g} (scale {scale:.3g})"


def test_the_ladders_noise_is_the_generators_next_draws_layer_by_layer():
    """Rasmus et al.'s noise: N(0, noise_std^2) on the input and each normalised pre-activation of the
    unlabelled then the labelled corrupted pass, (B, H_l) each in that order from the step's generator."""
    config = from_dict(TINY_MODELS["fc-ladder"])
    model, batch = build_model(config), tiny_batch(config)
    seen = []

    def recording(x, x_labelled, labels, noise):
        seen.append(noise)
        return model(x, x_labelled, labels, noise)

    generator = torch.Generator().manual_seed(3)
    model.batch_cost(batch, generator, forward=recording)
    replay = torch.Generator().manual_seed(3)
    B, sizes = config.batch_size, config.encoder_proj
    for noise in seen[0]:  # the unlabelled pass's, then the labelled pass's
        assert [tuple(n.shape) for n in noise] == [(B, h) for h in sizes]
        for n in noise:
            assert torch.equal(n, torch.randn(n.shape, generator=replay))
    assert torch.equal(generator.get_state(), replay.get_state())
    clean = model.encode(batch.x)
    corrupted = model.encode(batch.x, config.noise_std, seen[0][0])
    assert torch.equal(corrupted.z[0], clean.z[0] + config.noise_std * seen[0][0][0])


def adam_setup(seed=0):
    """Three parameters of different shapes and the gradients of four steps."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(30, 7), (7,), ()]
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    grads = [[torch.randn(s, generator=g) for s in shapes] for _ in range(4)]
    return params, grads


def adam_steps(optimizer, params, grads, skip=()):
    """One optimizer step per gradient set; parameter i has no gradient at the steps in skip[i]."""
    for t, step_grads in enumerate(grads):
        for i, (p, grad) in enumerate(zip(params, step_grads)):
            p.grad = None if t in (skip[i] if i < len(skip) else ()) else grad.clone()
        optimizer.step()


def test_blocks_adam_is_its_rule_on_each_steps_lists():
    """The kept lists change nothing: bitwise adam_update_ on the lists built afresh at each step."""
    params, grads = adam_setup()
    expected = [p.detach().clone() for p in params]
    means, variances = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    for t, step_grads in enumerate(grads, start=1):
        adam_update_(expected, step_grads, means, variances, t, 0.01)
    adam_steps(BlocksAdam(params, lr=0.01), params, grads)
    assert all(torch.equal(p.detach(), e) for p, e in zip(params, expected))


def test_blocks_adam_leaves_a_parameter_without_gradient_alone():
    params, grads = adam_setup()
    start = [p.detach().clone() for p in params]
    optimizer = BlocksAdam(params, lr=0.01)
    adam_steps(optimizer, params, grads[:2], skip=[(), (0,), (0, 1)])
    assert not optimizer.state[params[2]] and torch.equal(params[2].detach(), start[2])
    assert optimizer.state[params[1]] and not torch.equal(params[1].detach(), start[1])
    assert optimizer.param_groups[0]["time"] == 2


def test_blocks_adam_steps_from_the_loaded_state_not_the_kept_lists():
    """Four steps equal three, load_state_dict into an optimizer that had kept lists of its own state,
    and the fourth."""
    whole_params, grads = adam_setup()
    adam_steps(BlocksAdam(whole_params, lr=0.01), whole_params, grads)
    saved_params, _ = adam_setup()
    saved = BlocksAdam(saved_params, lr=0.01)
    adam_steps(saved, saved_params, grads[:3])

    params, _ = adam_setup()
    resumed = BlocksAdam(params, lr=0.01)
    for _ in range(2):  # first with its own fresh state (lists kept), then with the loaded one
        with torch.no_grad():
            for p, q in zip(params, saved_params):
                p.copy_(q)
        adam_steps(resumed, params, grads[3:])
        if resumed.param_groups[0]["time"] == 1:
            resumed.load_state_dict(saved.state_dict())
    assert resumed.param_groups[0]["time"] == 4
    assert all(torch.equal(p.detach(), q.detach()) for p, q in zip(params, whole_params))
