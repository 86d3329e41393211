"""Grader quality: judge calibration against human labels, grader checks, cheap-answer probes."""

from __future__ import annotations

from rftgrade.quality._probes import PROBE_NAMES, Probe, build_probes
from rftgrade.quality.calibrate import CalibrationGates, calibrate
from rftgrade.quality.report import write_report

__all__ = ["PROBE_NAMES", "CalibrationGates", "Probe", "build_probes", "calibrate", "write_report"]
