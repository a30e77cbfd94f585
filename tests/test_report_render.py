"""The sweep's static HTML report, rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tuning.sweep.report import read_experiment, write_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _fake_sweep(root: Path) -> Path:
    """A Tune experiment on disk as Tune writes it: trial folders with params.json and result.json."""
    experiment = root / "sweep"
    for task, n_trials in (("mrpc", 4), ("rte", 2)):
        for i in range(n_trials):
            trial = experiment / task / f"train_prompts_abc_{i:05d}_{i}_seed={i}"
            trial.mkdir(parents=True)
            # A trial's config: its TrainConfig overrides (Table 6's "off": 0 / None) and the train config
            # they replace fields of; sweeps written before issue 12 have "off" strings, read the same way.
            params = {"lr": 10 ** (-2 + i / 2), "batch_size": [8, 16][i % 2], "steps": 30, "warmup_steps": [0, "off"][i % 2],
                      "decay_factor": [0.1, None][i % 2], "steps_per_decay": None, "scale_parameter": bool(i % 2),
                      "prompt_length": 20, "init": ["class_label", "sampled_vocab"][i % 2], "seed": 2 * i,
                      "train": {"task": task, "model": "tiny", "num_prompts": 2, "eval_every": 10}}
            trial.joinpath("params.json").write_text(json.dumps(params))
            stop = 30 if i < 2 else 10  # two trials stopped early by ASHA
            lines = []
            for step in range(10, stop + 1, 10):
                score = 0.5 + 0.01 * i + step / 300
                lines.append({"step": step, "score": score, "best_score": score, "trial_id": f"abc_{i:05d}",
                              "finished": step == 30, "prompt_0/best_score": score, "prompt_0/best_step": step,
                              "prompt_1/best_score": score - 0.05, "prompt_1/best_step": step})
            trial.joinpath("result.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
        experiment.joinpath(task, "registered.json").write_text(json.dumps(
            [{"trial_id": f"abc_{n_trials - 1:05d}", "k": 0, "score": 0.6, "length": 20,
              "path": f"/r/{task}/{task}-abc_{n_trials - 1:05d}-k0.safetensors"}]))
    return experiment


def test_report_reads_trials_and_marks_status(tmp_path):
    experiment = _fake_sweep(tmp_path)
    trials = read_experiment(experiment / "mrpc")
    assert [t.status for t in trials] == ["complete", "complete", "stopped early", "stopped early"]
    html = write_report(experiment).read_text()
    assert html.count("<section") == 2 and html.count("data:image/png;base64,") == 4
    # Best-N table: every packed prompt is a row, ranked by its best dev score.
    table = html[html.index('<table class="best">'):html.index("</table>")]
    scores = [float(x) for x in re.findall(r'<td class="score">([\d.]+)</td>', table)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 8
    assert "mrpc-abc_00003-k0.safetensors" in table


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    report = write_report(_fake_sweep(tmp_path))
    profile = tmp_path / "profile"
    url = report.resolve().as_uri()
    dom = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<table class="best">' in html and html.count("<tr>") >= 8 + 2 + 2  # rows + headers
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', html)
    assert sorted(images) == sorted(["learning curves mrpc", "hyperparameters mrpc",
                                     "learning curves rte", "hyperparameters rte"])
    png = tmp_path / "report.png"
    shot = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                           "--window-size=1200,2000", url], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    shutil.copy(png, Path("/tmp/sweep-report-screenshot.png"))  # for a human look; harmless in CI
