"""The run's data-quality thresholds: when a product SAS made is recorded as unusable.

One section of the run's settings (``quality:`` in a config file, ``--quality.min-flare-gti``
on the command line, a group of the Prefect form), beside the steps' own: a step's section
holds the knobs of its SAS task (each named after the task's parameter), while these are
daxa-xmm's own judgement of the products and read by several steps' builders (espfilt's,
the cleaning's, the images'). A product at or below one of them is a data-quality outcome,
not a SAS error (:mod:`daxa_xmm.sas.quality`): it is recorded ``data_quality`` and what it
feeds is not run. The defaults (zero) ask only that a product is not empty, and leave every
call's fingerprint as it was before these checks existed; a threshold above zero enters the
fingerprints of the calls whose products it judges, so raising one re-runs those (and what
follows them) under the new rule.
"""

from __future__ import annotations

__all__ = ["QualityConfig"]

from pydantic import Field

from daxa_xmm.sas.quality import Limit, Quality
from daxa_xmm.steps._common import FrozenConfig
from daxa_xmm.units import Time

_SECTION = "quality"


def _setting(field: str) -> str:
    return f"{_SECTION}.{field}"


class QualityConfig(FrozenConfig):
    """quality: data-quality thresholds of the products; a product at or below one is recorded
    as a data-quality outcome (not a SAS error) and what it feeds is not run."""

    min_flare_gti: Time = Field(
        "0 s", validate_default=True,
        description="espfilt's good time (the total of its GTI) must be longer than this; else the sub-exposure "
                    "is recorded as fully flared and not cleaned")
    min_clean_events: int = Field(0, ge=0, description="a cleaned event list must hold more events than this")
    min_clean_gti: Time = Field(
        "0 s", validate_default=True, description="a cleaned event list's good time (its GTIs' total) must be longer than this")
    min_expmap_exposure: Time = Field(
        "0 s", validate_default=True,
        description="an exposure map's largest value (the exposure where the field of view is best exposed) must be "
                    "above this")

    def flare_gti(self) -> Quality:
        """The check of espfilt's GTI."""
        return Quality("flare_gti", good_time=Limit(float(self.min_flare_gti.to_value("s")), _setting("min_flare_gti")))

    def cleaned_events(self) -> Quality:
        """The check of a cleaned event list."""
        return Quality("cleaned_events", good_time=Limit(float(self.min_clean_gti.to_value("s")), _setting("min_clean_gti")),
                       events=Limit(float(self.min_clean_events), _setting("min_clean_events")))

    def image(self) -> Quality:
        """The check of a count image (its WCS; no threshold)."""
        return Quality("image")

    def exposure_map(self) -> Quality:
        """The check of an exposure map."""
        return Quality("exposure_map",
                       exposure=Limit(float(self.min_expmap_exposure.to_value("s")), _setting("min_expmap_exposure")))
