"""The prompt registry (`tuning.registry`): layout, ordered registration, and the one-length rule that the
sweep's selection and the Serve bank share. No Ray, tiny backbone only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from ensemble import PromptBank
from tuning.artifact import PromptArtifact, save_prompt
from tuning.registry import LOCK_FILE, PromptRegistry, file_name, keep_one_length, name_of
from tuning.sweep.registry import REGISTERED_FILE, Candidate, register, select


def art(backbone, task="mrpc", length=4, score=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return PromptArtifact(torch.randn(length, backbone.embed_dim, generator=g), task, backbone.name,
                          backbone.fingerprint, metrics={} if score is None else {"average": score})


# ---- layout ---------------------------------------------------------------------------------------

def test_layout_and_names_round_trip(tmp_path, tiny_llama):
    reg = PromptRegistry(tmp_path)
    path = reg.path_for("mrpc", "mrpc-lr0.3-k1")  # a dot in the name is not taken for a suffix
    assert path == tmp_path / "mrpc" / "mrpc-lr0.3-k1.safetensors" and path.parent == reg.task_dir("mrpc")
    assert file_name("mrpc-lr0.3-k1") == path.name and name_of(path) == "mrpc-lr0.3-k1"
    assert reg.key(path) == "mrpc/mrpc-lr0.3-k1.safetensors"
    assert save_prompt(art(tiny_llama), path) == path
    save_prompt(art(tiny_llama, "rte"), reg.path_for("rte", "b"))
    save_prompt(art(tiny_llama, "rte"), reg.path_for("rte", "a"))
    assert reg.files() == [path, reg.path_for("rte", "a"), reg.path_for("rte", "b")]
    assert reg.files("rte") == [reg.path_for("rte", "a"), reg.path_for("rte", "b")]
    assert reg.files("cb") == []                         # a task without a directory has no prompts
    with pytest.raises(OSError):
        PromptRegistry(tmp_path / "missing").files()     # the bank catches this and keeps its last prompts
    bank = PromptBank(tiny_llama, tmp_path)
    assert bank.tasks["mrpc"].names == ["mrpc-lr0.3-k1"] and bank.tasks["rte"].names == ["a", "b"]


@pytest.mark.parametrize("bad", ["", "a/b", "..", ".hidden", "x\0y"])
def test_names_that_would_leave_the_layout_are_refused(tmp_path, bad):
    reg = PromptRegistry(tmp_path)
    with pytest.raises(ValueError):
        reg.path_for("mrpc", bad)
    with pytest.raises(ValueError):
        reg.task_dir(bad)


# ---- registration ---------------------------------------------------------------------------------

def test_register_writes_every_new_file_before_deleting_stale_ones(tmp_path, tiny_llama, monkeypatch):
    reg = PromptRegistry(tmp_path)
    stale = save_prompt(art(tiny_llama, length=6), reg.path_for("mrpc", "old"))
    kept_name = save_prompt(art(tiny_llama, seed=9), reg.path_for("mrpc", "b"))  # same name: overwritten
    other = save_prompt(art(tiny_llama, "rte"), reg.path_for("rte", "keep"))
    events = []
    import tuning.registry as registry_module

    def recording_save(artifact, path):
        events.append(("write", Path(path).name))
        return save_prompt(artifact, path)
    original_unlink = Path.unlink

    def recording_unlink(self, missing_ok=False):
        events.append(("delete", self.name))
        # the task never lacks the new prompts: each is in place before anything is deleted
        assert all(reg.path_for("mrpc", n).exists() for n in ("a", "b"))
        return original_unlink(self, missing_ok=missing_ok)
    monkeypatch.setattr(registry_module, "save_prompt", recording_save)
    monkeypatch.setattr(Path, "unlink", recording_unlink)

    new = [("a", art(tiny_llama, seed=1)), ("b", art(tiny_llama, seed=2))]
    written = reg.register("mrpc", new)
    assert written == [reg.path_for("mrpc", "a"), reg.path_for("mrpc", "b")] == reg.files("mrpc")
    assert events == [("write", "a.safetensors"), ("write", "b.safetensors"), ("delete", "old.safetensors")]
    assert not stale.exists() and other.exists() and kept_name.exists()
    assert torch.equal(PromptBank(tiny_llama, tmp_path).tasks["mrpc"].prompts[1], new[1][1].prompt)
    assert (reg.task_dir("mrpc") / LOCK_FILE).exists()  # the lock file is no prompt
    assert sorted(p.name for p in reg.task_dir("mrpc").iterdir()) == [LOCK_FILE, "a.safetensors", "b.safetensors"]


@pytest.mark.parametrize("case, words", [
    ("empty", "nothing to register"),
    ("other-task", "cannot be registered under"),
    ("two-lengths", "one prompt length"),
    ("duplicate", "duplicate"),
])
def test_register_refuses_what_the_bank_would_not_serve_whole_and_changes_nothing(tmp_path, tiny_llama, case, words):
    reg = PromptRegistry(tmp_path)
    old = save_prompt(art(tiny_llama), reg.path_for("mrpc", "old"))
    named = {"empty": [], "other-task": [("a", art(tiny_llama, "rte"))],
             "two-lengths": [("a", art(tiny_llama)), ("b", art(tiny_llama, length=5))],
             "duplicate": [("a", art(tiny_llama)), ("a", art(tiny_llama))]}[case]
    with pytest.raises(ValueError, match=words):
        reg.register("mrpc", named)
    assert reg.files("mrpc") == [old]


def test_sweep_register_records_what_it_registered(tmp_path, tiny_llama):
    chosen = [Candidate("t1", k, art(tiny_llama, score=0.5 - k / 10, seed=k)) for k in range(2)]
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    written = register("mrpc", chosen, tmp_path / "registry", experiment)
    assert [p.name for p in written] == ["mrpc-t1-k0.safetensors", "mrpc-t1-k1.safetensors"]
    record = json.loads((experiment / REGISTERED_FILE).read_text())
    assert [(r["trial_id"], r["k"], r["length"], r["path"]) for r in record] == [
        ("t1", k, 4, str(p)) for k, p in enumerate(written)]
    with pytest.raises(ValueError, match="no trial of task 'mrpc' left a checkpoint"):
        register("mrpc", [], tmp_path / "registry")


# ---- one task, one length -------------------------------------------------------------------------

def test_keep_one_length_keeps_the_most_common_ties_to_the_shortest_or_the_one_asked_for():
    items = [("a", 5), ("b", 4), ("c", 5), ("d", 6)]
    kept, refused = keep_one_length(items, lambda i: i[1])
    assert kept == [("a", 5), ("c", 5)]
    assert refused == [(("b", 4), "length 4 differs from the task's 5"),
                       (("d", 6), "length 6 differs from the task's 5")]
    tie = [("a", 6), ("b", 4)]
    assert keep_one_length(tie, lambda i: i[1])[0] == keep_one_length(tie[::-1], lambda i: i[1])[0] == [("b", 4)]
    assert keep_one_length(items, lambda i: i[1], length=6)[0] == [("d", 6)]
    assert keep_one_length([], lambda i: i[1]) == ([], [])


def test_sweep_selection_takes_the_winners_length_even_when_it_is_rarer(tiny_llama):
    cands = ([Candidate("a", 0, art(tiny_llama, length=8, score=0.9))]
             + [Candidate("b", k, art(tiny_llama, length=4, score=0.5 + k / 100)) for k in range(3)]
             + [Candidate("c", k, art(tiny_llama, length=8, score=0.6)) for k in range(2)])
    assert [(c.trial_id, c.k) for c in select(cands, 2)] == [("a", 0), ("c", 0)]
    assert [(c.trial_id, c.k) for c in select(cands, 5)] == [("a", 0), ("c", 0), ("c", 1)]
    assert select([], 3) == []


def test_the_bank_serves_exactly_what_the_sweep_registered(tmp_path, tiny_llama):
    """The sweep picks the winner's length; registration then replaces a task whose files had another length
    (and more of them), so the bank's most-common-length rule keeps every registered prompt, refuses none."""
    reg = PromptRegistry(tmp_path)
    for k in range(4):
        save_prompt(art(tiny_llama, length=4, seed=k), reg.path_for("mrpc", f"old-{k}"))
    cands = ([Candidate("w", 0, art(tiny_llama, length=8, score=0.9))]
             + [Candidate("x", k, art(tiny_llama, length=4, score=0.8)) for k in range(3)]
             + [Candidate("y", k, art(tiny_llama, length=8, score=0.7 - k / 10)) for k in range(2)])
    chosen = select(cands, 3)
    register("mrpc", chosen, tmp_path)
    bank = PromptBank(tiny_llama, tmp_path)
    assert bank.tasks["mrpc"].names == sorted(c.name for c in chosen) and not bank.refused
    assert bank.tasks["mrpc"].length == chosen[0].artifact.length == 8


def test_the_bank_refuses_by_the_shared_rule(tmp_path, tiny_llama):
    """A registry filled by hand with mixed lengths: the bank keeps and refuses what `keep_one_length` says."""
    reg = PromptRegistry(tmp_path)
    lengths = {"a": 5, "b": 4, "c": 6, "d": 4, "e": 5}
    for name, n in lengths.items():
        save_prompt(art(tiny_llama, "rte", length=n), reg.path_for("rte", name))
    kept, refused = keep_one_length(sorted(lengths.items()), lambda i: i[1])
    bank = PromptBank(tiny_llama, tmp_path)
    assert bank.tasks["rte"].names == [name for name, _ in kept] == ["b", "d"]  # a 2-2 tie goes to the shorter
    assert bank.refused == {reg.key(reg.path_for("rte", name)): why for (name, _), why in refused}


# ---- readers of the layout ------------------------------------------------------------------------

def test_bf16_guard_key_covers_every_prompt_file_and_survives_a_missing_registry(tmp_path, tiny_llama):
    from ensemble.precision_guard import _verdict_key

    reg = PromptRegistry(tmp_path)
    path = save_prompt(art(tiny_llama), reg.path_for("mrpc", "a"))
    save_prompt(art(tiny_llama, "rte"), reg.path_for("rte", "b"))
    # the key of the earlier glob-based listing, so verdicts cached before this change stay valid
    digest = hashlib.sha256(f"{tiny_llama.fingerprint}|bfloat16|4".encode())
    for p in sorted(tmp_path.glob("*/*.safetensors")):
        digest.update(f"{p.parent.name}/{p.name}".encode() + hashlib.sha256(p.read_bytes()).digest())
    key = _verdict_key(tiny_llama, tmp_path, "bfloat16", 4)
    assert key == digest.hexdigest()[:32]
    save_prompt(art(tiny_llama, seed=3), path)
    assert _verdict_key(tiny_llama, tmp_path, "bfloat16", 4) != key
    assert _verdict_key(tiny_llama, tmp_path / "missing", "bfloat16", 4)
