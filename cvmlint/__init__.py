"""cvmlint: policy-as-code linter and image compliance checker for confidential-VM base images.

>>> from cvmlint.policy import load_policy, evaluate
>>> from cvmlint.facts import load_facts_file
>>> policy = load_policy(default_policy_path())          # doctest: +SKIP
>>> report = evaluate(policy, load_facts_file("facts.json"))  # doctest: +SKIP
>>> report.exit_code()                                   # doctest: +SKIP
"""

__version__ = "0.1.0"
