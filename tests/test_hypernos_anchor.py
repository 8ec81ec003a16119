"""The anchor of the FNO speed benchmark: HyperNOs' FNO, restated in benchmarks/.

It must be the paper's model: its parameter counts (PyTorch's, a complex weight
counted once) are the paper's for the six tuned configurations, and with
ionops' weights (its extra high-mode weights zero) it computes ionops' FNO.
"""

import sys
from pathlib import Path

import pytest
import torch

from ionops.models import FNO
from ionops.models.fno_arch import PAPER_CONFIGURATIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from hypernos_fno import HyperNOsFNO, from_ionops

NAMES = list(PAPER_CONFIGURATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_anchor_has_the_papers_parameter_count(name):
    arch, count, _ = PAPER_CONFIGURATIONS[name]
    anchor = HyperNOsFNO(arch.d_v, arch.n_layers, arch.k_max, arch.activation, arch.n_pad,
                         arch.layer, arch.n_states)  # fmt: skip
    assert anchor.parameter_count() == count


@pytest.mark.parametrize("name", NAMES)
def test_anchor_with_ionops_weights_computes_ionops_fno(name):
    torch.manual_seed(0)
    arch = PAPER_CONFIGURATIONS[name][0]
    ours = FNO(arch)
    anchor = from_ionops(ours)
    stimulus = torch.rand(3, 240) * 10.0  # long enough that the high modes never reach k_max
    with torch.no_grad():
        expected = ours(stimulus)
        got = anchor(stimulus[:, :, None]).permute(0, 2, 1)
    scale = expected.abs().max()
    assert (got - expected).abs().max() <= 1e-5 * scale
    assert scale > 0
