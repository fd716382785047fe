"""``voxface demo``: the main job on the built-in data, as far as the toolkit goes today.

1. generate VoxSynth (default size) with its preview, statistics and oracle ceilings, and check it;
2. pretrain a small face teacher (IResNet-18 x0.25, 64 px) on VoxSynth's faces-only identities;
3. train the paper's method (contrastive + OT + RKD) with a CPU-size ECAPA-TDNN, reporting the
   validation AUC against the oracle ceiling.
Every step keeps its output in the run folder; run again, finished steps are reused and an
interrupted training resumes from its last checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxface.protocol import DataRoots, load_protocol
from voxface.protocol.check import check_files, format_check
from voxface.protocol.stats import format_stats
from voxface.synth.build import SynthConfig, generate
from voxface.synth.preview import write_preview
from voxface.training.config import load_config
from voxface.training.face_teacher import FaceTeacherConfig, pretrain_face_teacher

# The CPU-size settings of configs/voxsynth/base.yaml, with the demo's paths.
TEACHER = FaceTeacherConfig(depth=18, width=0.25, input_size=64, num_features=128, epochs=8, batch_size=64,
                            lr=0.1, margin=0.3, scale=30.0)


def demo_train_overrides(out: Path, epochs: int) -> list[str]:
    data = out / "voxsynth"
    return [f"data.root={data}", f"data.lists={data / 'protocol'}", "data.face_size=64",
            f"face.weights={out / 'teacher' / 'backbone.pth'}", "mapping.hidden=[256]",
            "audio.channels=[256,256,256,256,768]", "audio.embedding_size=128", "optim.batch_size=32",
            "optim.step_gamma=0.7", "loss.temperature=0.2", f"trainer.epochs={epochs}",
            "trainer.checkpoint_every=100", f"trainer.out={out / 'train' / 'full'}"]


def run_demo(out: str | Path, identities: int = 300, epochs: int = 12, workers: int | None = None,
             progress: bool = True) -> dict:
    from voxface.cli import format_synth_summary
    from voxface.training.run import train

    out = Path(out)
    data = out / "voxsynth"
    print(f"[1/3] VoxSynth ({identities} identities) -> {data}", flush=True)
    summary = generate(data, SynthConfig(identities=identities), workers=workers, progress=progress)
    print(format_synth_summary(data, summary))
    for path in write_preview(data):
        print(f"preview: {path}")
    protocol, roots = load_protocol(data / "protocol"), DataRoots.from_root(data)
    print(format_stats(protocol))
    print(format_check(check_files(protocol, roots)))

    teacher_dir = out / "teacher"
    print(f"\n[2/3] face teacher: IResNet-18 x{TEACHER.width}, {TEACHER.input_size}px, on {data / 'teacher_faces'}",
          flush=True)
    if (teacher_dir / "teacher.json").is_file():
        teacher = json.loads((teacher_dir / "teacher.json").read_text())
        print("(already trained)")
    else:
        resume = (teacher_dir / "checkpoints" / "last.ckpt").is_file()
        teacher = pretrain_face_teacher(data / "teacher_faces", teacher_dir, TEACHER, resume=resume,
                                        progress=progress)
    print(f"held-out face verification AUC {teacher['heldout_verification_auc']:.3f} "
          f"({teacher['heldout_identities']} unseen identities)")

    print("\n[3/3] training the paper's method (contrastive + OT + RKD), CPU-size ECAPA-TDNN", flush=True)
    config = load_config(None, demo_train_overrides(out, epochs))
    config.trainer.progress = progress
    run_file = Path(config.trainer.out) / "run.json"
    if run_file.is_file() and json.loads(run_file.read_text()).get("epochs", 0) >= epochs:
        result = json.loads(run_file.read_text())
        print("(already trained)")
    else:
        resume = (Path(config.trainer.out) / "checkpoints" / "last.ckpt").is_file()
        result = train(config, resume=resume)
    ceiling = summary["oracle"]["verification_auc"]["random_unseenunheard"]
    print(f"validation AUC (val identities, random negatives): best {result['best_val_auc']:.3f}, "
          f"last {result['val_auc']:.3f}; oracle ceiling of random unseen-unheard: {ceiling:.3f}")
    print(f"\ndone: {out}")
    return {"synth": summary, "teacher": teacher, "train": result}
