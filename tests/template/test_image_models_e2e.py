"""End to end: the image family's published backbones (transformers ResNet-18, ResNet-50, ConvNeXt-T) in a generated project.

One image project; `nox -s setup` builds its venv and measures every candidate into tech.md (the pretrained ones
with random weights). For each backbone: `nox -s train_smoke -- model=<key> model.pretrained=false
model.input_size=32` (random weights, 32x32 inputs, CPU), then infer.py and the HTTP service (scripts/serve.py,
real uvicorn on a loopback port) on its checkpoint, with no weights/ folder in the project.

Pretrained loading: a tiny ResNet saved with `save_pretrained` into weights/resnet18/ stands in for the fetched
ImageNet weights (no hub here). A frozen-backbone epoch keeps every backbone tensor exactly as saved; infer.py
then serves that checkpoint with weights/ gone; and training without weights/ stops with the one-line error
that names `nox -s fetch_weights`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from validators.frontmatter import split

from ..helpers import render

pytestmark = pytest.mark.e2e
TIMEOUT = 1500
BACKBONES = {"resnet18": "resnet", "resnet50": "resnet", "convnext_tiny": "convnext"}  # key -> HF model_type
# grey 28x28 mini data, 10 classes: the published networks (11,689,512 / 25,557,032 / 28,589,128 parameters with
# 3 channels and 1000 classes) less 2 stem input channels and 990 head rows
PARAMS = {"small_cnn": None, "resnet": None, "resnet18": 11_175_370, "resnet50": 23_522_250, "convnext_tiny": 27_824_746}
IMAGE = "data/mini/images/3/0023.png"
TIMES: dict[str, float] = {}


def run(cmd: list[str], cwd: Path, *, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert (result.returncode == 0) == ok, f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def python(root: Path) -> str:
    return str(root / ".venvs/debug-cpu/bin/python")


def in_venv(root: Path, code: str, *args: str) -> object:
    """Run `code` with the project venv's Python (it has torch and transformers; this one has not); its JSON output."""
    return json.loads(run([python(root), "-c", code, *args], root).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = render(tmp_path_factory.mktemp("image") / "demo_project", setup=False, task_family="image_classification")
    run([sys.executable, "-m", "nox", "-s", "setup"], root)
    return root


def test_setup_measures_the_backbones_with_random_weights(project):
    """tech.md's figures for the pretrained candidates are measured without weights/: the same architectures."""
    assert not (project / "weights").exists()
    candidates = {c["key"]: c for c in split((project / "docs/plan/tech.md").read_text(encoding="utf-8"))[0]["candidates"]}
    assert list(candidates) == list(PARAMS)
    for key, params in PARAMS.items():
        assert candidates[key]["params_source"].startswith("measured"), key
        if params is not None:
            assert candidates[key]["params"] == params, key
    # forward FLOPs at input_size 224 with a grey stem (1 input channel) and a 10-class head; RGB and 1000 classes below
    assert {key: candidates[key]["flops_per_sample"] for key in BACKBONES} == {
        "resnet18": 3_469_780_992, "resnet50": 8_016_961_536, "convnext_tiny": 8_890_274_304}


PUBLISHED = """
import json, sys, torch
from torch.utils.flop_counter import FlopCounterMode
sys.path.insert(0, "src")
from demo_project.models.components import MODELS
built = {key: MODELS[key][1](MODELS[key][0](pretrained=False), in_channels=3, image_size=224, num_outputs=1000)
         for key in sys.argv[1:]}
out = {}
for key, model in built.items():
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, 224, 224))
    out[key] = [sum(p.numel() for p in model.parameters()), round(counter.get_total_flops() / 2e9, 2)]
print(json.dumps(out))
"""


def test_pretrained_false_builds_the_published_architectures(project):
    """RGB 224x224 input and a 1000-class head: exactly the parameters and the multiply-adds (GMACs) of the ImageNet
    models (He et al. 2016, Liu et al. 2022), as torchvision's model table gives them for resnet18, resnet50 and
    convnext_tiny: 11.7M / 1.81, 25.6M / 4.09, 28.6M / 4.46."""
    measured = in_venv(project, PUBLISHED, *BACKBONES)
    assert measured == {"resnet18": [11_689_512, 1.81], "resnet50": [25_557_032, 4.09], "convnext_tiny": [28_589_128, 4.46]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_one(root: Path, checkpoint: Path, image: Path) -> dict:
    """Start scripts/serve.py on `checkpoint`, POST `image` to /predict over HTTP, stop it; the answer."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([python(root), "scripts/serve.py", "--checkpoint", str(checkpoint), "--port", str(port)],
                              cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, f"serve.py exited {server.returncode}:\n{server.stdout.read()[-4000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not answer /health within 300 s"
            time.sleep(1)
        response = httpx.post(f"{url}/predict", files={"file": (image.name, image.read_bytes(), "image/png")}, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.parametrize("key", [k if k == "resnet18" else pytest.param(k, marks=pytest.mark.models) for k in BACKBONES])
def test_train_smoke_then_infer_and_serve_without_weights(project, key):
    start = time.perf_counter()
    run([sys.executable, "-m", "nox", "-s", "train_smoke", "--", f"model={key}", "model.pretrained=false", "model.input_size=32"],
        project)
    TIMES[key] = round(time.perf_counter() - start, 1)
    print(f"nox -s train_smoke wall times (s): {TIMES}")
    assert not (project / "weights").exists()
    summary = json.loads((project / "runs/latest/summary.json").read_text())
    assert (summary["model"], summary["epochs"], summary["global_step"]) == (key, 1, 4)  # 420 training images, batch 128
    checkpoint = project / summary["last_checkpoint"]
    saved = in_venv(project, (
        "import json, sys, torch; h = torch.load(sys.argv[1], map_location='cpu', weights_only=False)['hyper_parameters'];"
        "print(json.dumps({'model': h['config']['model'], 'model_type': h['model_kwargs']['arch']['model_type'],"
        " 'channels': h['model_kwargs']['arch']['num_channels'], 'labels': len(h['model_kwargs']['arch']['id2label'])}))"),
        str(checkpoint))
    assert saved == {"model": {"name": key, "pretrained": False, "freeze_backbone": False, "input_size": 32, "dropout": 0.0},
                     "model_type": BACKBONES[key], "channels": 1, "labels": 10}
    inferred = json.loads(run([python(project), "scripts/infer.py", "--checkpoint", str(checkpoint), IMAGE], project).stdout)
    (prediction,) = inferred["predictions"]
    assert prediction["id"] == IMAGE and len(prediction["probs"]) == 10
    served = serve_one(project, checkpoint, project / IMAGE)
    assert served == {**prediction, "id": "0023.png"}  # the same label and probabilities, to the printed digit


SAVE_TINY = """
import json, sys, torch
from transformers import ResNetConfig, ResNetForImageClassification
torch.manual_seed(7)
config = ResNetConfig(layer_type="basic", depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8, num_labels=3)
ResNetForImageClassification(config).save_pretrained(sys.argv[1])
print(json.dumps(True))
"""
COMPARE = """
import json, sys, torch
from safetensors.torch import load_file
saved = load_file(sys.argv[1])
state = torch.load(sys.argv[2], map_location="cpu", weights_only=False)["state_dict"]
backbone = [k for k in saved if not k.startswith("classifier.")]
print(json.dumps({"backbone": len(backbone), "equal": sum(torch.equal(saved[k], state["model.net." + k]) for k in backbone),
                  "head": list(state["model.net.classifier.1.weight"].shape)}))
"""


def test_pretrained_weights_load_from_weights_dir_and_a_frozen_backbone_stays_exact(project):
    weights = project / "weights/resnet18"
    assert in_venv(project, SAVE_TINY, str(weights)) is True
    run([python(project), "scripts/train.py", "--epochs", "1", "model=resnet18", "model.freeze_backbone=true",
         "model.input_size=32", "run.name=frozen", "logger=csv"], project)
    checkpoint = (project / "runs/latest/checkpoints/last.ckpt").resolve()
    assert checkpoint.parent.parent.name.endswith("-frozen")
    compared = in_venv(project, COMPARE, str(weights / "model.safetensors"), str(checkpoint))
    # every backbone tensor (convolutions, BatchNorm weights and running statistics), untouched; a new 10-class head
    assert compared == {"backbone": 36, "equal": 36, "head": [10, 16]}
    shutil.move(weights.parent, project / "weights.aside")  # infer.py needs only the checkpoint
    inferred = json.loads(run([python(project), "scripts/infer.py", "--checkpoint", str(checkpoint), "data/mini/images/3"],
                              project).stdout)
    assert len(inferred["predictions"]) == 60

    failed = run([python(project), "scripts/train.py", "--epochs", "1", "model=resnet18", "logger=csv"], project, ok=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert [line for line in failed.stderr.splitlines() if line.startswith("error:")] == [
        f"error: configs/model/resnet18.yaml: pretrained: True needs the weights in {project}/weights/resnet18/ "
        "(config.json is missing) (hint: run `nox -s fetch_weights -- resnet18` where there is internet and copy weights/ "
        "here, or set model.pretrained=false to train the same architecture from random weights)"]


KEYS = """
import sys, torch
state = torch.load(sys.argv[1], map_location="cpu", weights_only=False)["state_dict"]
print(json.dumps(sorted({k.split(".")[1] for k in state if k.startswith("model.")} | {"_orig_mod" for k in state if "_orig_mod" in k})))
""".replace("import sys", "import json, sys")


def test_the_gpu_paths_compile_and_channels_last_train_here_on_a_cpu(project):
    """trainer.compile and trainer.channels_last (on in configs/trainer/gpu.yaml) are config-checked and run here on a
    CPU: torch.compile reports its compile time and leaves the checkpoint's keys those of the plain model."""
    done = run([python(project), "scripts/train.py", "--epochs", "1", "model=resnet18", "model.pretrained=false",
                "model.input_size=32", "trainer.compile=true", "trainer.channels_last=true", "trainer.limit_train_batches=3",
                "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "run.name=compiled", "logger=csv"], project)
    summary = json.loads((project / "runs/latest/summary.json").read_text(encoding="utf-8"))
    assert summary["measured"]["compile_seconds"] > 0
    assert f"torch.compile: {summary['measured']['compile_seconds']} s compiling in the first training step" in done.stdout
    checkpoint = (project / "runs/latest/checkpoints/last.ckpt").resolve()
    assert in_venv(project, KEYS, str(checkpoint)) == ["net"]  # no `_orig_mod`: infer.py loads it as is
    inferred = json.loads(run([python(project), "scripts/infer.py", "--checkpoint", str(checkpoint), IMAGE], project).stdout)
    assert len(inferred["predictions"]) == 1

    gpu = run([python(project), "scripts/train.py", "trainer=gpu", "--print-config"], project).stdout
    assert "channels_last: true" in gpu and "compile: false" in gpu and "precision: bf16-mixed" in gpu
    bad = run([python(project), "scripts/train.py", "trainer.channels_last=maybe", "--print-config"], project, ok=False)
    assert [line for line in bad.stderr.splitlines() if line.startswith("error:")][0].startswith("error: ")
    assert "trainer.channels_last" in bad.stderr
