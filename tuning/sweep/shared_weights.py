"""One frozen checkpoint shared by every trial through Ray's object store.

A torch Module passed to `tune.with_parameters` is unpickled into a private copy in every trial
(+1 model of memory per trial). Numpy arrays are not: `ray.get` returns them as read-only views of
the node's shared-memory object store. So the driver ships the weights once as numpy arrays, and
each trial builds the architecture on the meta device (no allocation) and assigns those views as
its tensors (`load_state_dict(assign=True)`): N trials on a node map one copy of the backbone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, PretrainedConfig, PreTrainedTokenizerBase

from tuning.backbone import Backbone, freeze


@dataclass
class SharedBackbone:
    """What goes into the object store: fp32 weights as numpy arrays plus everything to rebuild around them."""

    name: str
    fingerprint: str
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase
    arrays: dict[str, np.ndarray]        # unique tensors (parameters and buffers), by first name
    aliases: dict[str, str]              # tied names -> the name holding their data

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def _named_tensors(model: torch.nn.Module):
    yield from model.named_parameters(remove_duplicate=False)
    yield from model.named_buffers(remove_duplicate=False)


def share(backbone: Backbone) -> SharedBackbone:
    """Export `backbone` for the object store (tied weights stored once)."""
    arrays: dict[str, np.ndarray] = {}
    aliases: dict[str, str] = {}
    owner: dict[int, str] = {}
    for name, tensor in _named_tensors(backbone.model):
        t = tensor.detach().to("cpu", torch.float32) if tensor.is_floating_point() else tensor.detach().cpu()
        key = tensor.data_ptr()
        if key in owner and tensor.numel():
            aliases[name] = owner[key]
            continue
        owner[key] = name
        arrays[name] = t.contiguous().numpy()
    return SharedBackbone(backbone.name, backbone.fingerprint, backbone.model.config, backbone.tokenizer, arrays, aliases)


def _set_tensor(model: torch.nn.Module, name: str, tensor: torch.Tensor) -> None:
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    if leaf in module._parameters:
        module._parameters[leaf] = torch.nn.Parameter(tensor, requires_grad=False)
    elif leaf in module._buffers:
        module._buffers[leaf] = tensor
    else:
        raise KeyError(f"{name} is neither a parameter nor a buffer of the rebuilt model")


def rebuild(shared: SharedBackbone, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
            writable: bool = False) -> Backbone:
    """A frozen Backbone whose CPU fp32 tensors are views of `shared.arrays` (no copy unless it must:
    another device or dtype, or `writable` for model tuning)."""
    auto = AutoModelForSeq2SeqLM if shared.config.is_encoder_decoder else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto.from_config(shared.config, dtype=torch.float32)
    tensors: dict[str, torch.Tensor] = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for name, array in shared.arrays.items():
            t = torch.from_numpy(array.copy() if writable else array)
            if t.is_floating_point() and (dtype != torch.float32 or torch.device(device).type != "cpu"):
                t = t.to(device=device, dtype=dtype)
            elif torch.device(device).type != "cpu":
                t = t.to(device)
            tensors[name] = t
    for name, source in shared.aliases.items():
        tensors[name] = tensors[source]
    # Parameters/buffers by name; tied names point at the same tensor object, so the tie survives.
    shared_params: dict[int, torch.nn.Parameter] = {}
    for name in list(shared.arrays) + list(shared.aliases):
        t = tensors[name]
        module_name, _, leaf = name.rpartition(".")
        module = model.get_submodule(module_name) if module_name else model
        if leaf in module._parameters:
            param = shared_params.get(id(t))
            if param is None:
                param = shared_params[id(t)] = torch.nn.Parameter(t, requires_grad=False)
            module._parameters[leaf] = param
        else:
            _set_tensor(model, name, t)
    left = [n for n, t in _named_tensors(model) if t.is_meta]
    if left:
        raise RuntimeError(f"rebuilt model still has meta tensors: {', '.join(left[:5])}")
    return Backbone(name=shared.name, model=freeze(model), tokenizer=shared.tokenizer, fingerprint=shared.fingerprint)
