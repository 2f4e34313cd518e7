"""How sure a number is: intervals for an accuracy and for the difference of two, and a paired test.

Every interval is 95% and over test tracks (a track's windows are not independent evidence).
"""

import math

INTERVAL = "95% Wilson score interval over the test tracks"
DIFFERENCE_INTERVAL = "95% Newcombe score interval for paired proportions (his method 10, no continuity correction)"
Z95 = 1.959963984540054
"""The standard normal quantile of 0.975."""
TEST = "exact McNemar test: two-sided binomial test of the tracks only one side got right, p = 1/2"


def wilson_interval(correct, n):
    """(low, high) 95% Wilson score interval of the proportion `correct`/`n` (n tracks); (0, 1) for n = 0.

    `correct` may be fractional (an accuracy over windows times the number of tracks).
    """
    if n == 0:
        return 0.0, 1.0
    z, p = Z95, correct / n
    centre, spread = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def paired_difference_interval(both, only_a, only_b, neither):
    """(low, high) 95% interval of accuracy B minus accuracy A from the 2x2 table of paired outcomes."""
    n = both + only_a + only_b + neither
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    low_a, high_a = wilson_interval(both + only_a, n)
    low_b, high_b = wilson_interval(both + only_b, n)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    below = math.sqrt((p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a) + (high_a - p_a) ** 2)
    above = math.sqrt((high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a) + (p_a - low_a) ** 2)
    return p_b - p_a - below, p_b - p_a + above


def mcnemar_p(only_a, only_b):
    """The exact McNemar p-value: two-sided binomial test of `only_b` among the discordant tracks; 1 if none."""
    from scipy.stats import binomtest  # here: importing scipy.stats costs evaluate, which needs no test, 0.5 s
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_b, only_a + only_b, 0.5).pvalue)


def rounded(interval, digits=6):
    """An interval as a JSON-friendly list of two rounded floats."""
    return [round(float(bound), digits) for bound in interval]
