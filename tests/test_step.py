"""The training step's parts: the noise drawn outside the forward (the same draws, no graph break)."""
import pytest
import torch

from tagger_torch.config import from_dict
from tagger_torch.model import Tagger
from tagger_torch.models import Batch
from tiny import LABELLED, TINY


def tiny_batch(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, D = config.batch_size, config.input_size
    x = torch.rand(B, D, generator=g)
    if config.input_type == "binary":
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


def test_the_training_forward_is_one_graph():
    """No draw inside the forward that batch_cost calls: torch.compile traces it without a graph break."""
    config = from_dict(LABELLED)
    model, batch = Tagger(config), tiny_batch(config)
    calls = []

    def explained(*args, **kwargs):
        report = torch._dynamo.explain(model)(*args, **kwargs)
        calls.append((report.graph_count, report.graph_break_count))
        return model(*args, **kwargs)

    torch._dynamo.reset()
    model.batch_cost(batch, torch.Generator().manual_seed(0), forward=explained)
    assert calls == [(1, 0), (1, 0)]  # the unlabelled and the labelled pass
