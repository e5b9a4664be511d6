"""Funding programmes (issue 20): which programme fits a project idea, is the applicant eligible, by when.

:mod:`~matcher.programmes.deadlines` finds the next round of a programme, :mod:`~matcher.programmes.eligibility`
checks the hard rules one by one (in German), :mod:`~matcher.programmes.matching` ranks the programmes on the
engine's scoring path and splits them into eligible and excluded ones, with partners and advisors for each.
"""
