"""Is the difference real? The comparison engine of the report.

- :mod:`~initsweep.report.compare.speed`: learning-speed metrics per seed from ``metrics.jsonl``;
- :mod:`~initsweep.report.compare.effects`: two samples of per-seed values: difference,
  interval, effect size, tests, seeds needed;
- :mod:`~initsweep.report.compare.engine`: which job meets which baseline, paired or not, Holm;
- :mod:`~initsweep.report.compare.verdict`: one plain-language line per comparison;
- :mod:`~initsweep.report.compare.forest`: the forest plot;
- :mod:`~initsweep.report.compare.section`: the report section that puts them together.
"""

from initsweep.report.compare.engine import Comparisons, Row, compare_jobs
from initsweep.report.compare.section import comparison_section, section

__all__ = ["Comparisons", "Row", "compare_jobs", "comparison_section", "section"]
