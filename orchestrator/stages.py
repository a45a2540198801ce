"""The route every frame takes, derived from the config the same way in every process.

The filter list is cut into consecutive segments at stateful filters: a
stateless segment runs on any worker, frames in parallel; a stateful filter
runs alone, pinned to worker 0, fed each stream's frames strictly in order.
Inference sits between the pre and post filters. Workers build their filter
chains from the same plan, so a stage name on the wire ("post.1") means the
same filters everywhere.
"""

from __future__ import annotations

import msgspec

from pipeless.orchestrator.config import PipelineConfig


class Stage(msgspec.Struct, frozen=True):
    name: str  # "pre.0", "infer", "post.0", ...
    kind: str  # "filters" or "infer"
    filters: tuple[str, ...] = ()
    stateful: bool = False  # pinned to worker 0, in frame order per stream
    prepares_input: bool = False  # the last pre segment letterboxes the frame into the model input


def plan_stages(cfg: PipelineConfig) -> list[Stage]:
    stages: list[Stage] = []
    for phase in ("pre", "post"):
        if phase == "post" and cfg.inference is not None:
            stages.append(Stage("infer", "infer"))
        segment: list[str] = []
        phase_stages: list[Stage] = []

        def flush(stateful: bool = False) -> None:
            if segment:
                phase_stages.append(Stage(f"{phase}.{len(phase_stages)}", "filters", tuple(segment), stateful))
                segment.clear()

        for flt in cfg.filters_for(phase):
            if flt.stateful:
                flush()
                segment.append(flt.name)
                flush(stateful=True)
            else:
                segment.append(flt.name)
        flush()
        if phase == "pre" and cfg.inference is not None:
            if not phase_stages or phase_stages[-1].stateful:
                phase_stages.append(Stage(f"pre.{len(phase_stages)}", "filters", ()))
            last = phase_stages[-1]
            phase_stages[-1] = Stage(last.name, last.kind, last.filters, last.stateful, prepares_input=True)
        stages.extend(phase_stages)
    return stages
