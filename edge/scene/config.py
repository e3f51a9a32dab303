"""The scene model's settings: one strict, frozen pydantic model, per node with per-camera overrides.

Times are seconds of picture time, never frame counts, so a camera sampled at 1 fps and one
at 0.5 fps behave alike. Sizes are fractions of the frame, so they survive a resolution change.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SceneSettings(BaseModel):
    """The class-agnostic eye: anything new that stays becomes a `static object`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description="Run the scene model on this camera. It only adds rows when a zone's classes use "
        "`static object` or `signboard`.",
    )
    signboards: bool = Field(
        default=True,
        description="Look for text on each new static region (PP-OCR text detector, once per region, "
        "not per frame); one with text is a `signboard`.",
    )
    width_px: int = Field(
        default=384, ge=96, le=1920, description="Working width; the picture is scaled down to this first."
    )
    interval_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="Least picture time between two updates. With keyframe-only decoding every keyframe "
        "(about one a second) is used; with full decoding the rest are skipped.",
    )
    learn_s: float = Field(
        default=10.0,
        ge=0.0,
        le=600.0,
        description="The clean background is the per-pixel median of the pictures of the first `learn_s` "
        "(people masked out), so a passer-by at start leaves no ghost. Also after a re-learn.",
    )
    short_term_s: float = Field(
        default=6.0, gt=0.0, le=600.0, description="Time constant of the short-term background."
    )
    long_term_s: float = Field(
        default=900.0,
        gt=0.0,
        le=86400.0,
        description="Time constant of the long-term (clean) background, updated only where the picture "
        "matches it, so a standing object is never learned into it.",
    )
    static_after_s: float = Field(
        default=15.0,
        gt=0.0,
        le=3600.0,
        description="Seconds a pixel must be new against the long-term background yet steady against the "
        "short-term one before it counts as static. The zone's dwell_s counts after that.",
    )
    absorb_after_s: float = Field(
        default=14400.0,
        gt=0.0,
        le=7 * 86400.0,
        description="A static region older than this becomes part of the clean background (its incident "
        "then clears). Long, so goods left out all afternoon stay an incident.",
    )
    diff_threshold: float = Field(
        default=30.0,
        ge=1.0,
        le=255.0,
        description="Least difference (0-255, any channel, after light compensation) that makes a pixel new.",
    )
    min_area: float = Field(
        default=0.001, ge=0.0, le=1.0, description="Smallest static region, as a fraction of the frame area."
    )
    max_area: float = Field(
        default=0.25, gt=0.0, le=1.0, description="Largest static region, as a fraction of the frame area."
    )
    view_change_fraction: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Share of the picture (outside people) that must differ from the clean background at "
        "once to mean the camera was moved, re-aimed or blocked.",
    )
    view_change_s: float = Field(
        default=3.0, ge=0.0, le=600.0, description="How long that must last before the model acts on it."
    )
    max_nudge_px: float = Field(
        default=12.0,
        ge=0.0,
        le=100.0,
        description="A camera shift up to this many working pixels is followed (the backgrounds move with "
        "it) instead of producing objects; 0 turns following off.",
    )

    @model_validator(mode="after")
    def _area_range(self) -> SceneSettings:
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area {self.min_area} must be below max_area {self.max_area}")
        return self
