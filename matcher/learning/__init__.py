"""Learning to rank from judgements and from feedback (issue 18): the learned ranker's training, and
feedback as unbiased training data."""

from matcher.learning.feedback import FeedbackEvent, Propensities, estimate_propensities, impressions
from matcher.learning.train import cross_validate, train_ranker

__all__ = ["FeedbackEvent", "Propensities", "cross_validate", "estimate_propensities", "impressions",
           "train_ranker"]
