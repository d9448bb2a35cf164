"""Is the difference real? The comparison engine of the report.

- :mod:`~initsweep.report.compare.design`: the factors a sweep varies, their baselines, the cells;
- :mod:`~initsweep.report.compare.speed`: learning-speed metrics per seed from ``metrics.jsonl``;
- :mod:`~initsweep.report.compare.measure`: the per-seed values a contrast reads;
- :mod:`~initsweep.report.compare.contrast`: a level against its baseline: estimate, t-interval,
  p-value, seeds needed;
- :mod:`~initsweep.report.compare.interaction`: the F-test of two factors' interaction;
- :mod:`~initsweep.report.compare.engine`: every level of every factor, the primary family, verdicts;
- :mod:`~initsweep.report.compare.verdict` and :mod:`~initsweep.report.compare.tables`: the words
  and the verdict table; :mod:`~initsweep.report.compare.forest`: the forest plot;
- :mod:`~initsweep.report.compare.section`: the report section that puts them together.
"""

from initsweep.report.compare.engine import Analysis, Row, analyse
from initsweep.report.compare.section import comparison_section, section

__all__ = ["Analysis", "Row", "analyse", "comparison_section", "section"]
