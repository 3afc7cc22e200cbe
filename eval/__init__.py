"""Evaluation: prompt suites, sampling jobs, quality and safety scorers, reports, the demo job."""
