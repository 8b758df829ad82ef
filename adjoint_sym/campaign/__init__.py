"""Campaigns: thousands of reproducibly drawn problems, judged on one machine or a Dask cluster.

:func:`run_campaign` draws problems ``0 .. N-1`` from a seed over families that cover the
hard regimes (:mod:`adjoint_sym.campaign.families`), judges each (the library's methods
by :func:`adjoint_sym.verify.check`, or a user's gradient function against the
references), and writes one JSON line per verdict as it completes, so a campaign can be
resumed and analysed later.  ``adjoint-sym campaign`` is the same on the command line.

==============================  ==============================================================
name                            what it is
==============================  ==============================================================
:func:`run_campaign`            run (or resume) a campaign, return its :class:`CampaignSummary`
:func:`problem_spec`            the JSON spec of problem ``index`` of campaign ``seed``
:func:`build_problem`           a spec back to a :class:`~adjoint_sym.numeric.problem.Problem`
:func:`run_problem`             judge one problem: the task a worker runs, a record out
:func:`read_records`            the records of a results file (a truncated last line ignored)
:func:`summarize`               records to a :class:`CampaignSummary`
:data:`FAMILIES`                the problem families by name
==============================  ==============================================================

Dask (``pip install "adjoint_sym[campaign]"``) is imported only when a campaign uses it.
"""

from .families import FAMILIES, PLANNED
from .problems import build_problem, problem_spec
from .records import read_records
from .runner import dask_available, run_campaign
from .summary import CampaignSummary, summarize
from .verdict import Settings, run_problem

__all__ = [
    "FAMILIES",
    "PLANNED",
    "CampaignSummary",
    "Settings",
    "build_problem",
    "dask_available",
    "problem_spec",
    "read_records",
    "run_campaign",
    "run_problem",
    "summarize",
]
