"""Forward and forward+backward time of each encoder for one batch (default 64 pairs: 2 s audio, 112x112 faces).

Full sizes are the paper's encoders (IResNet-34; ECAPA-TDNN C=1024; Wav2vec 2.0 / HuBERT / WavLM base,
randomly initialised from their base configurations: timing does not depend on the weights); CPU
sizes are the small configurations the demo and tests use. Runs on the GPU when there is one.

    python benchmarks/bench_encoders.py [--batch 64] [--repeats 2] [--only ecapa-cpu iresnet34 ...]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from voxface.encoders import ECAPATDNN, SSLEncoder, iresnet
from voxface.media.fbank import KaldiFbank


def ssl(kind: str, small: bool) -> SSLEncoder:
    from transformers import AutoConfig, AutoModel

    extra = dict(hidden_size=144, num_hidden_layers=4, num_attention_heads=4, intermediate_size=288) if small else {}
    config = AutoConfig.for_model(kind, layerdrop=0.0, apply_spec_augment=False, **extra)
    return SSLEncoder(AutoModel.from_config(config), embedding_size=192)


ENCODERS = {
    "iresnet34": ("face", lambda: iresnet(34)),
    "iresnet18-cpu": ("face64", lambda: iresnet(18, width=0.25, input_size=64, num_features=128)),
    "ecapa-1024": ("fbank", lambda: ECAPATDNN()),
    "ecapa-cpu": ("fbank", lambda: ECAPATDNN(channels=(256, 256, 256, 256, 768), embedding_size=128)),
    "wav2vec2-base": ("wave", lambda: ssl("wav2vec2", False)),
    "hubert-base": ("wave", lambda: ssl("hubert", False)),
    "wavlm-base": ("wave", lambda: ssl("wavlm", False)),
    "wav2vec2-cpu": ("wave", lambda: ssl("wav2vec2", True)),
}


def inputs(kind: str, batch: int, device: torch.device) -> torch.Tensor:
    if kind == "face":
        return torch.randn(batch, 3, 112, 112, device=device)
    if kind == "face64":
        return torch.randn(batch, 3, 64, 64, device=device)
    wave = torch.randn(batch, 32000, device=device) * 0.1
    return KaldiFbank().to(device)(wave)[0] if kind == "fbank" else wave


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=sorted(ENCODERS), default=list(ENCODERS))
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"device: {name}; torch {torch.__version__}; batch {args.batch}")
    for label in args.only:
        kind, build = ENCODERS[label]
        model = build().to(device).train()
        x = inputs(kind, args.batch, device)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        with torch.no_grad():
            forward = timed(lambda m=model, x=x: m(x), args.repeats, device)

        def step(m=model, x=x):
            m.zero_grad(set_to_none=True)
            m(x).square().mean().backward()

        both = timed(step, args.repeats, device)
        print(f"{label:<15} {params:7.2f}M params  forward {forward * 1000:8.1f} ms  forward+backward "
              f"{both * 1000:8.1f} ms  ({args.batch / both:6.1f} pairs/s training)", flush=True)


if __name__ == "__main__":
    main()
