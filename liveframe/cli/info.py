"""``liveframe info [BRAIN]``: what a brain is, in readable lines (``--json``: its whole spec).

The text names what a performer needs: what the brain sees (size, grey or colour, context
frames), what it plays (kind, framing, rate, clock, hop), its synthesis for a spectrum
brain, and where it came from (architecture, data, epochs, loss, dates). Paths of the
machine it was trained on are shown as file names.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from liveframe.core.brain import Brain, resolve_brain_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("brain", nargs="?", default=None,
                        help="brain file, or a name in ./brains/ or the shipped brains "
                        "(default: default)")
    parser.add_argument("--json", action="store_true",
                        help="print the brain's whole spec as JSON (with the synthesis facts "
                        "of a spectrum brain)")


def _name(v: Any) -> str:
    return Path(v).name if isinstance(v, str) and "/" in v else str(v)


def describe(path: Path, d: dict[str, Any]) -> list[str]:
    """The readable lines of ``info`` for a brain at ``path`` with spec dict ``d``."""
    inp, out, prov = d.get("input", {}), d.get("output", {}), d.get("provenance", {})
    sr, fps = d.get("sample_rate"), d.get("fps")
    colour = "grey" if inp.get("channels") == 1 else f"{inp.get('channels')} channels"
    ctx = inp.get("context", 0)
    lines = [
        f"brain     {path}",
        f"sees      {inp.get('width')}x{inp.get('height')} {colour}"
        + (f", the current frame and {ctx} before it" if ctx else ", one frame a tick"),
        f"plays     {out.get('kind')} ({out.get('framing')} framing), {sr} Hz, "
        f"{fps:g} ticks/s, {int(round(sr / fps)) if sr and fps else '?'} samples a tick",
    ]
    if out.get("kind") == "spectrum":
        syn = d.get("synthesis", {})
        lines.append(
            f"spectrum  n_fft {out.get('n_fft')} ({out.get('window')}), "
            f"{out.get('frames')} frames a tick, phase {out.get('phase')}"
            + (f", latency {syn['latency_samples']} samples "
               f"({1000 * syn['latency_samples'] / sr:.1f} ms)"
               if "latency_samples" in syn and sr else ""))
    else:
        lines.append(f"scale     {out.get('scale'):.4g} (output level)")
    layers = d.get("layers") or []
    lines.append(f"net       {d.get('arch') or 'custom'}"
                 + (f", layers {'-'.join(map(str, layers))}" if layers else ""))
    if prov:
        sources = prov.get("sources") or []
        trained = []
        if "epochs" in prov:
            trained.append(f"{prov['epochs']} epochs (best {prov.get('best_epoch', '?')})")
        if "loss" in prov:
            trained.append(f"loss {prov['loss']}")
        if "val_loss" in prov:
            trained.append(f"validation {prov['val_loss']:.4g}")
        starts = prov.get("starts") or []
        if starts and all(isinstance(t, dict) for t in starts):
            kept = min(starts, key=lambda t: float(t.get("val_loss", math.inf)))
            trained.append(f"kept seed {kept.get('seed', '?')} of {len(starts)} starts "
                           f"(validation {', '.join(_val(t) for t in starts)})")
        if trained:
            lines.append(f"trained   {', '.join(trained)}")
        if "data" in prov or sources:
            shown = ", ".join(_name(s) for s in sources[:3])
            more = f" and {len(sources) - 3} more" if len(sources) > 3 else ""
            lines.append(f"data      {_name(prov.get('data', '?'))}"
                         + (f": {prov.get('dataset_ticks', '?')} ticks from {shown}{more}"
                            if sources else ""))
        dates = [f"{k} {prov[k]}" for k in ("date", "exported") if k in prov]
        if dates:
            lines.append(f"made      {', '.join(dates)}")
    return lines


def run(args: argparse.Namespace) -> int:
    path = resolve_brain_path(args.brain)
    brain = Brain.load(path)
    d = brain.spec.to_dict()
    if brain.spec.spectral:
        from liveframe.core.spectral import SpectralDecoder, synth_info

        d["synthesis"] = {**synth_info(brain.spec),
                          "latency_samples": SpectralDecoder(brain.spec).latency}
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=True))
    else:
        print("\n".join(describe(path, d)))
    return 0


def _val(start: dict) -> str:
    v = start.get("val_loss")
    return f"{v:.4g}" if isinstance(v, (int, float)) else "?"
