"""Everything about a model a learner's function could change, kept so that it can be put
back exactly, and said in words when it was changed.

Read and restored through torch's public API where it has one: the module tree
(`named_children`, `setattr`/`delattr`), parameters and buffers (`named_parameters` /
`named_buffers` with ``recurse=False``, `register_parameter` / `register_buffer`), their
values (`state_dict`-style detached copies), `requires_grad` and `.grad`, `training`, the
instance attributes (`vars`), and the global grad mode (`torch.is_grad_enabled`). Hooks are
the exception: torch has no public way to list or remove a hook without the handle that
registered it, so the hook dictionaries (`_forward_hooks`, ...) are read and put back
directly; that is the only private state used here.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["ModelSnapshot"]

# No public API lists a module's hooks (only the handle returned by register_..._hook
# removes one): these dictionaries are torch's own, read and restored by name.
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs",
               "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
               "_load_state_dict_post_hooks")
_COUNTED_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_MISSING = object()


class _ModuleState:
    """One module's own (not its children's) state."""

    def __init__(self, m: nn.Module):
        self.module = m
        self.params = dict(m.named_parameters(recurse=False, remove_duplicate=False))
        self.buffers = dict(m.named_buffers(recurse=False, remove_duplicate=False))
        self.children = dict(m.named_children())
        self.hooks = {attr: dict(getattr(m, attr)) for attr in _HOOK_DICTS if isinstance(getattr(m, attr, None), dict)}
        # Set by register_full_backward_hook; again no public accessor.
        self.full_hook = getattr(m, "_is_full_backward_hook", _MISSING)
        self.training = m.training
        self.attrs = dict(vars(m))

    def tree_changed(self) -> bool:
        m = self.module
        now = (dict(m.named_parameters(recurse=False, remove_duplicate=False)),
               dict(m.named_buffers(recurse=False, remove_duplicate=False)), dict(m.named_children()))
        return not all(_same_items(live, saved) for live, saved in zip(now, (self.params, self.buffers, self.children)))

    def restore_tree(self) -> None:
        """The same parameter, buffer and child objects under the same names."""
        m = self.module
        for name, _ in list(m.named_parameters(recurse=False, remove_duplicate=False)):
            if name not in self.params:
                # A parameter where there was none: most often a bias set where the model has
                # `bias=None`, a None entry that no public API lists. A None parameter reads as
                # the original did and is left out of state_dict; under a fresh name it is inert.
                m.register_parameter(name, None)
        for name, _ in list(m.named_buffers(recurse=False, remove_duplicate=False)):
            if name not in self.buffers:
                delattr(m, name)
        for name, _ in list(m.named_children()):
            if name not in self.children:
                delattr(m, name)
        for name, p in self.params.items():
            if name in vars(m):  # a plain attribute now stands where the parameter was
                delattr(m, name)
            m.register_parameter(name, p)
        for name, b in self.buffers.items():
            if getattr(m, name, _MISSING) is not b:
                live = dict(m.named_buffers(recurse=False, remove_duplicate=False))
                # Persistence, from what state_dict holds (the set itself is private).
                persistent = name not in live or name in m.state_dict(keep_vars=True)
                if hasattr(m, name) and name not in live:
                    delattr(m, name)
                m.register_buffer(name, b, persistent=persistent)
        for name, child in self.children.items():
            if getattr(m, name, _MISSING) is not child:
                setattr(m, name, child)

    def restore_hooks(self, where: str) -> list[str]:
        left: list[str] = []
        m = self.module
        for attr, saved in self.hooks.items():
            live = getattr(m, attr)
            if attr in _COUNTED_HOOKS:
                left += [f"{attr.strip('_').replace('_', ' ')[:-1]} on {where}"] * len(set(live) - set(saved))
            if live.keys() != saved.keys():
                live.clear()
                live.update(saved)
        if self.full_hook is _MISSING:
            m.__dict__.pop("_is_full_backward_hook", None)
        else:
            m._is_full_backward_hook = self.full_hook
        return left

    def restore_attrs(self, where: str) -> list[str]:
        """Public instance attributes added or replaced (a monkey-patched ``forward``)."""
        patched: list[str] = []
        m = self.module
        for key in set(vars(m)) - set(self.attrs):
            if not key.startswith("_"):  # torch keeps its own state in private attributes
                patched.append(f"{where}.{key}")
                del m.__dict__[key]
        for key, value in self.attrs.items():
            if not key.startswith("_") and key != "training" and vars(m).get(key, _MISSING) is not value:
                patched.append(f"{where}.{key}")
                m.__dict__[key] = value
        return patched


class ModelSnapshot:
    """Everything about a model a learner's function could change, kept so that it can
    be put back exactly: the module tree, parameter and buffer objects and values,
    requires_grad flags and .grad, training flags, hooks, instance attributes that
    shadow methods (a monkey-patched ``forward``), and the global grad mode."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.names = {id(m): (name or "the model") for name, m in net.named_modules()}
        self.modules = [_ModuleState(m) for m in net.modules()]
        self.params = {}
        for state in self.modules:
            for p in state.params.values():
                if p is not None and id(p) not in self.params:
                    self.params[id(p)] = (p, p.detach().clone(), p.requires_grad, p.grad)
        self.buffers = {}
        for state in self.modules:
            for b in state.buffers.values():
                if b is not None and id(b) not in self.buffers:
                    self.buffers[id(b)] = (b, b.detach().clone())
        self.grad_enabled = torch.is_grad_enabled()

    def restore(self) -> list[str]:
        """Put everything back; return what had changed, in words (empty: nothing)."""
        changes: list[str] = []
        hooks_left: list[str] = []
        replaced: list[str] = []
        mode: list[str] = []
        patched: list[str] = []
        for state in self.modules:
            where = self.names[id(state.module)]
            if state.tree_changed():
                replaced.append(where)
                state.restore_tree()
            hooks_left += state.restore_hooks(where)
            if state.module.training != state.training:
                mode.append(where)
                state.module.training = state.training  # this module only: train() would recurse
            patched += state.restore_attrs(where)
        weights, flags, grads = [], [], []
        names = {id(p): n for n, p in self.net.named_parameters()}
        for p, value, requires_grad, grad in self.params.values():
            if not _same_tensor(p.detach(), value):
                weights.append(names.get(id(p), "a parameter"))
                _put_back(p, value)
            if p.requires_grad != requires_grad:
                flags.append(names.get(id(p), "a parameter"))
                p.requires_grad_(requires_grad)
            if p.grad is not grad:
                grads.append(names.get(id(p), "a parameter"))
                p.grad = grad
        buffer_names = {id(b): n for n, b in self.net.named_buffers()}
        stats = []
        for b, value in self.buffers.values():
            if not _same_tensor(b, value):
                stats.append(buffer_names.get(id(b), "a buffer"))
                _put_back(b, value)
        if torch.is_grad_enabled() != self.grad_enabled:
            changes.append(f"switched gradients {'off' if self.grad_enabled else 'on'} for the whole session "
                           "(torch.set_grad_enabled); use `with torch.no_grad():` around a block instead")
            torch.set_grad_enabled(self.grad_enabled)
        if hooks_left:
            changes.append(f"left {len(hooks_left)} hook(s) on the model ({_some(hooks_left)}): keep the handle "
                           "that register_..._hook returns and call handle.remove(), in a `finally:` block")
        if mode:
            changes.append("switched the model to training mode (net.train(), or .train() on a part of it); "
                           "leave it in eval mode: dropout and batch norm behave differently in training mode")
        if weights:
            changes.append(f"changed the model's weights ({_some(weights)}): an in-place operation on a "
                           "parameter, or an optimiser step on the model")
        if stats:
            changes.append(f"changed the model's buffers ({_some(stats)}), e.g. batch-norm statistics "
                           "updated by a forward pass in training mode")
        if flags:
            changes.append(f"switched requires_grad on for the model's parameters ({_some(flags)}); the "
                           "gradient you need is with respect to the image, not the weights")
        if grads:
            changes.append(f"left gradients in the parameters' .grad ({_some(grads)})")
        if replaced:
            changes.append(f"replaced parts of the model ({_some(replaced)})")
        if patched:
            changes.append(f"set attributes on the model ({_some(patched)}), e.g. a replaced forward")
        return changes


def _same_items(live: dict, saved: dict) -> bool:
    """The same keys holding the very same objects (tensors are compared by identity: `==`
    on two tensors is elementwise)."""
    return live.keys() == saved.keys() and all(live[k] is saved[k] for k in saved)


def _same_tensor(live: torch.Tensor, saved: torch.Tensor) -> bool:
    return (live.dtype == saved.dtype and live.device == saved.device and live.shape == saved.shape
            and torch.equal(live, saved))


def _put_back(live: torch.Tensor, saved: torch.Tensor) -> None:
    with torch.no_grad():
        if live.dtype == saved.dtype and live.device == saved.device and live.shape == saved.shape:
            live.copy_(saved)
        else:  # converted in place (.double(), .to(...)): give it back its own storage
            live.data = saved.clone()


def _some(items: Sequence[str], n: int = 3) -> str:
    items = list(dict.fromkeys(items))
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more
